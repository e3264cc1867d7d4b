"""Long-running jobs as resources, for every kind (ingest, training, ...): records, persistence, the manager.

A kind plugs in a ``JobRunner`` (validate a spec, run it with progress and cancellation, encode its
progress/result); ``JobManager`` does the rest the same way for all: the lifecycle state machine,
background execution, watching, cancelling, paginated listing and persistence across restarts.
"""
