"""The ingest service: a thin gRPC edge over ``shipyard.data.jobs.IngestJobManager``."""
