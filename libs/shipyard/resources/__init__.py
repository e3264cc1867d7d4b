"""Resource spec types shared by the CLI, the services and the operator (``shipyard.dev/v1alpha1``).

Each kind (``IngestJob``, ``TrainingJob``, later ``EvaluationJob``, ``ModelDeployment``) is a pydantic model:
the same document is accepted from YAML, over gRPC and as a custom resource, with the same field-level
validation messages. ``meta`` holds what every kind shares.
"""
