"""The ingest service: a thin gRPC edge over the ingest job manager (``shipyard.data.jobs``)."""
