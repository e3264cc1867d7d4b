"""The training service: a thin gRPC edge over the training job manager (``shipyard.training.jobs``)."""
