"""The evaluation service: a thin gRPC edge over the evaluation job manager (``shipyard.evaluation.jobs``)."""
