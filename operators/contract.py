"""What the operator agrees on with the code it runs: commands, annotations, labels and names.

The training entrypoint, the evaluation runner and the inference server read their arguments and write
their progress through these names; changing one here is a change of the contract with those programs.

Progress/outcome reporting (written by the program, read by the operator's plans):

- Training: the code running in the RayJob may set annotation ``PROGRESS_ANNOTATION`` on its RayJob to a
  JSON object ``{"step", "totalSteps", "tokensSeen", "lastCheckpoint", "metrics": {"loss", "learningRate",
  "tokensPerSecond", "mfu"}}`` and, on success, ``OUTCOME_ANNOTATION`` to ``{"outputModel",
  "registeredModel"}`` (the JSON line ``shipyard.training.entrypoint`` prints last). Absent annotations
  only mean less detail: the status still follows the RayJob's own state, and the output model defaults
  to the spec's ``output.uri`` or ``<storageRoot>/models/<job>``.
- Evaluation: the runner sets annotation ``SCORES_ANNOTATION`` on its Job (named by ``--k8s-job``) to
  ``{"scores": {"<task>/<metric>": number}, "reportUri": "..."}`` before it exits 0.
"""

from __future__ import annotations

# Defined next to the EvaluationJob type: the runner (a library) sets it, the operator reads it.
from shipyard.resources.evaluation_job import SCORES_ANNOTATION as SCORES_ANNOTATION

FIELD_MANAGER = "shipyard-operator"
GROUP = "shipyard.dev"
VERSION = "v1alpha1"

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "shipyard-operator"
NAME_LABEL = "app.kubernetes.io/name"
INSTANCE_LABEL = "app.kubernetes.io/instance"
OWNER_KIND_LABEL = "shipyard.dev/owner-kind"
KUEUE_QUEUE_LABEL = "kueue.x-k8s.io/queue-name"

PROGRESS_ANNOTATION = "shipyard.dev/progress"
OUTCOME_ANNOTATION = "shipyard.dev/outcome"
MODEL_ANNOTATION = "shipyard.dev/model"
# sha256 of an Agent's mounted spec, on its pod template: a spec change rolls the agents Deployment.
SPEC_HASH_ANNOTATION = "shipyard.dev/spec-hash"

# Runs the same training code as embedded mode (`shipyard.training.entrypoint`), on the RayJob's cluster.
TRAINING_ENTRYPOINT = "python -m shipyard.training.entrypoint --ray-address auto --job-json"
# The evaluation runner; arguments are appended by the evaluation plan.
EVALUATION_COMMAND = ("python", "-m", "shipyard.evaluation.runner")
# The inference server (OpenAI-compatible HTTP + gRPC with the standard health service).
INFERENCE_COMMAND = ("python", "-m", "shipyard_services.inference")
# The agents service, serving one Agent: ``--agent NAME --agent-spec PATH --grpc-port PORT``. The file at
# PATH is the Agent manifest (JSON) with ``spec.model`` already resolved to ``url`` (+ ``name``), so the
# service needs no cluster access; the session database URL comes in ``AGENTS_DATABASE_ENV``.
AGENTS_COMMAND = ("python", "-m", "shipyard_services.agents")
AGENTS_DATABASE_ENV = "SHIPYARD_AGENTS_DATABASE_URL"
