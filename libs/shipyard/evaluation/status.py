"""An embedded EvaluationJob's status in the CRD's shape (what ``kubectl get evaluationjobs`` would show)."""

from __future__ import annotations

from typing import Any

from shipyard.lifecycle import JobState
from shipyard.resources.status import EvaluationJobStatus, JobPhase, conditions_from_record

__all__ = ["evaluation_status"]


def evaluation_status(record: dict[str, Any]) -> EvaluationJobStatus:
    """``record``: a stored job record (``JobStore`` JSON, result as ``EvaluationRunner`` encodes it)."""
    result = record.get("result") or {}
    return EvaluationJobStatus(
        phase=JobPhase.from_state(JobState(record["state"])),
        conditions=conditions_from_record(record),
        scores={str(k): float(v) for k, v in (result.get("scores") or {}).items()},
        report_uri=result.get("reportUri"),
        message=record.get("message") or None,
    )
