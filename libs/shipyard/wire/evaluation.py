"""Wire <-> domain conversion for the evaluation service (``shipyard.v1.EvaluationService``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf import json_format

from shipyard.api.v1 import common_pb2, evaluation_pb2
from shipyard.lifecycle import JobState
from shipyard.wire import common

if TYPE_CHECKING:
    from shipyard.evaluation.jobs import EvalSummary
    from shipyard.evaluation.runner import EvalProgress
    from shipyard.jobs.record import JobRecord

    EvaluationJobRecord = JobRecord[EvalSummary, EvalProgress]

COLLECTION = "evaluationJobs"


def spec_from_pb(spec: evaluation_pb2.EvaluationJobSpec) -> dict[str, Any]:
    """Only the fields the caller set, with the JSON (camelCase) names a manifest uses.

    Unset optional fields are left out so the spec's documented defaults apply, and validation errors
    name fields the same way on every path (``spec.tasks``, ``spec.batchSize``).
    """
    return json_format.MessageToDict(spec)


def spec_to_pb(spec: dict[str, Any]) -> evaluation_pb2.EvaluationJobSpec:
    """A validated spec (camelCase or snake_case keys, as the job manager stores it) as the wire message."""
    return json_format.ParseDict(spec, evaluation_pb2.EvaluationJobSpec())


def progress_to_pb(record: EvaluationJobRecord) -> common_pb2.Progress:
    """Samples done/total over all tasks; the stage names the task now running."""
    p = record.progress
    done = p.samples_done if p else 0
    total = p.samples_total if p else 0
    elapsed = (record.update_time - record.start_time).total_seconds() if record.start_time else 0.0
    stage = ""
    if p is not None:
        running = [(name, t) for name, t in p.tasks.items() if t.done < t.total]
        name, t = running[0] if running else next(reversed(p.tasks.items()), ("", None))
        stage = f"{name} {t.done}/{t.total}" if t is not None else ""
    cached = sum(t.cached for t in p.tasks.values()) if p else 0
    return common.progress_pb(
        completed=done,
        total=total,
        unit="samples",
        stage=stage,
        # Cached samples cost nothing; counting them would inflate the rate and shrink the ETA.
        rate=(done - cached) / elapsed if elapsed > 0 else 0.0,
        rate_unit="samples/s",
        elapsed=elapsed,
        done=record.state is JobState.SUCCEEDED,
    )


def record_to_pb(r: EvaluationJobRecord) -> evaluation_pb2.EvaluationJob:
    status = evaluation_pb2.EvaluationJobStatus(
        state=common.state_to_pb(r.state),
        progress=progress_to_pb(r),
        conditions=common.conditions_to_pb(r),
        start_time=common.timestamp(r.start_time),
        completion_time=common.timestamp(r.completion_time),
        message=r.message,
    )
    if r.progress is not None:
        status.tasks.extend(
            evaluation_pb2.TaskProgress(task=name, completed=t.done, total=t.total)
            for name, t in r.progress.tasks.items()
        )
        status.failed_samples = sum(t.failed for t in r.progress.tasks.values())
    res = r.result
    if res is not None:
        # Standard errors travel once the job result carries them (EvalSummary.stderr); until then 0.
        stderr: dict[str, float] = getattr(res, "stderr", {})
        for key, value in res.scores.items():
            status.scores[key].CopyFrom(evaluation_pb2.Score(value=value, stderr=stderr.get(key, 0.0)))
        status.dimensions.update(res.dimensions)
        status.report_uri = res.report_uri
        status.failed_samples = res.num_failed
    return evaluation_pb2.EvaluationJob(
        metadata=common.metadata_to_pb(r), spec=spec_to_pb(r.spec), status=status
    )


def record_to_operation(r: EvaluationJobRecord) -> common_pb2.Operation:
    job = record_to_pb(r)
    return common.operation(r, COLLECTION, job, job.status.progress)


def scores_from_pb(status: evaluation_pb2.EvaluationJobStatus) -> dict[str, tuple[float, float]]:
    """``"<task>/<metric>" -> (value, stderr)`` for clients (the CLI's table)."""
    return {key: (s.value, s.stderr) for key, s in status.scores.items()}
