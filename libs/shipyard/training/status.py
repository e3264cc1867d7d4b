"""A training job record as the ``TrainingJob`` status the CRD declares (for ``shipyard get`` and tools).

Embedded mode keeps job records (``shipyard.jobs``); a cluster keeps custom resources. This maps the first
onto the second so both show the same columns with the same meaning.
"""

from __future__ import annotations

from typing import Any

from shipyard.lifecycle import JobState
from shipyard.resources.status import JobPhase, TrainingJobStatus, TrainingMetrics, conditions_from_record


def training_status(state: JobState, record: dict[str, Any]) -> TrainingJobStatus:
    """``record``: a stored job record (``JobStore`` JSON: progress and result as the runner encodes them)."""
    progress = record.get("progress") or {}
    result = record.get("result") or {}
    metrics = result.get("final_metrics") or progress.get("metrics") or {}
    return TrainingJobStatus(
        phase=JobPhase.from_state(state),
        conditions=conditions_from_record(record),
        step=result.get("steps", progress.get("step")),
        total_steps=progress.get("total_steps"),
        tokens_seen=result.get("tokens_seen", progress.get("tokens_seen")),
        last_checkpoint=result.get("last_checkpoint") or progress.get("last_checkpoint"),
        metrics=TrainingMetrics(
            loss=metrics.get("loss"),
            learning_rate=metrics.get("lr"),
            tokens_per_second=metrics.get("tokens_per_s"),
            mfu=metrics.get("mfu"),
            eval_loss=metrics.get("eval_loss"),
        )
        if metrics
        else None,
        output_model=result.get("output_model_uri"),
        registered_model=result.get("registered"),
        restarts=result.get("restarts", progress.get("restarts")),
        message=record.get("message") or None,
    )
