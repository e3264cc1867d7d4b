"""Embedded answers to what the operator reads from the cluster for a ModelDeployment or EvaluationJob.

On a cluster, ``modelFrom: {trainingJob: X}`` is X's ``status.outputModel`` and a gate reads the named
EvaluationJob's ``status.scores``. Here both come from the job records the local job managers keep under
``<root>/jobs/``. A reference that cannot be satisfied yet is ``FailedPrecondition`` naming the field
and what to do, the same condition the operator reports as ``Waiting``.
"""

from __future__ import annotations

from shipyard.errors import FailedPrecondition
from shipyard.evaluation.gate import GateDecision, check_gate
from shipyard.jobs.store import read_job_json
from shipyard.lifecycle import JobState
from shipyard.resources.model_deployment import Gate
from shipyard.storage.base import Storage

__all__ = ["deployment_gate", "evaluation_scores", "training_output_model"]


def training_output_model(storage: Storage, root: str, job: str, *, field: str) -> str:
    """The model TrainingJob ``job`` produced here: its merged model when it has one, else its output."""
    result = _succeeded(storage, root, "training", "TrainingJob", job, field)
    return str(result.get("merged_model_uri") or result["output_model_uri"])


def evaluation_scores(storage: Storage, root: str, job: str, *, field: str) -> dict[str, float]:
    """The ``task/metric`` scores EvaluationJob ``job`` reported here."""
    result = _succeeded(storage, root, "evaluation", "EvaluationJob", job, field)
    return {str(k): float(v) for k, v in result.get("scores", {}).items()}


def deployment_gate(storage: Storage, root: str, gate: Gate) -> GateDecision:
    """Whether ``gate`` passes on the scores of its EvaluationJob as run here."""
    scores = evaluation_scores(storage, root, gate.evaluation_job, field="spec.gate.evaluationJob")
    return check_gate(gate, scores)


def _succeeded(storage: Storage, root: str, kind: str, label: str, job: str, field: str) -> dict[str, object]:
    record = read_job_json(storage, root, kind, job)
    if record is None:
        raise FailedPrecondition(f"{field}: {label} {job!r} has not run here; apply it first")
    state = JobState(record["state"])
    if state is not JobState.SUCCEEDED or not record.get("result"):
        raise FailedPrecondition(
            f"{field}: {label} {job!r} is {state.name.lower()}, not succeeded; the reference waits for it"
        )
    result: dict[str, object] = record["result"]
    return result
