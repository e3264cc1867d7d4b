"""Resolve a ``model`` / ``modelFrom`` to a URI, given the referenced TrainingJob's observed status.

Shared by EvaluationJob and ModelDeployment: both wait (never fail) while the TrainingJob runs, and say
why with a reason when it is absent or failed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipyard.resources.references import ModelSource


@dataclass(frozen=True)
class Unresolved:
    """The model is not available: ``waiting`` says whether it may still come (vs. it never will)."""

    reason: str
    message: str
    waiting: bool


def resolve_model(source: ModelSource, training_job: dict[str, Any] | None) -> str | Unresolved:
    """The model URI, or why there is none yet. ``training_job`` is the referenced object (or None)."""
    if source.model is not None:
        return source.model
    assert source.model_from is not None  # the spec model guarantees exactly one
    name = source.model_from.training_job
    if training_job is None:
        return Unresolved(
            "TrainingJobNotFound", f"spec.modelFrom.trainingJob: TrainingJob {name!r} does not exist", True
        )
    status = training_job.get("status") or {}
    phase = status.get("phase")
    if phase in ("Failed", "Cancelled"):
        return Unresolved(
            "TrainingJobFailed", f"spec.modelFrom.trainingJob: TrainingJob {name!r} is {phase}", False
        )
    if phase == "Succeeded" and status.get("outputModel"):
        return str(status["outputModel"])
    return Unresolved(
        "WaitingForModel", f"waiting for TrainingJob {name!r} to succeed (now {phase or 'Pending'})", True
    )
