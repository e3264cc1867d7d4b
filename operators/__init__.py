"""The Shipyard operator (kopf): reconciles TrainingJob, EvaluationJob and ModelDeployment resources.

Each kind has a pure ``plan`` (spec + observed objects -> desired objects + status) and one idempotent
``apply`` edge (server-side apply with a named field manager; status patched only when it changed).
"""
