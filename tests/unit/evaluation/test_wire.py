"""Wire conversion for the evaluation service: specs keep only what was set; records carry progress/scores."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shipyard.api.v1 import common_pb2, evaluation_pb2
from shipyard.evaluation.jobs import EvalSummary
from shipyard.evaluation.runner import EvalProgress, TaskProgress
from shipyard.jobs.record import JobRecord
from shipyard.lifecycle import JobState
from shipyard.wire import evaluation as wire

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _record(
    state: JobState, progress: EvalProgress | None = None, result: EvalSummary | None = None
) -> JobRecord:
    return JobRecord(
        name="ev",
        uid="u",
        spec={"model": "smollm2-135m-instruct", "tasks": ["gsm8k", "mmlu"], "limit": 5, "batchSize": 8},
        labels={"team": "eval"},
        state=state,
        create_time=T0,
        update_time=T0 + timedelta(seconds=10),
        start_time=T0,
        progress=progress,
        result=result,
    )


def test_spec_from_pb_keeps_only_set_fields_with_manifest_names() -> None:
    spec = evaluation_pb2.EvaluationJobSpec(model="m", tasks=["gsm8k"], num_fewshot=0, batch_size=4)
    assert wire.spec_from_pb(spec) == {"model": "m", "tasks": ["gsm8k"], "numFewshot": 0, "batchSize": 4}
    assert wire.spec_from_pb(evaluation_pb2.EvaluationJobSpec(tasks=["x"])) == {"tasks": ["x"]}


def test_running_record_reports_samples_per_task_rate_and_the_task_in_progress() -> None:
    progress = EvalProgress(
        {
            "gsm8k": TaskProgress(done=5, total=5, cached=5),
            "mmlu_anatomy": TaskProgress(done=2, total=5, failed=1),
        }
    )
    job = wire.record_to_pb(_record(JobState.RUNNING, progress))
    p = job.status.progress
    assert (p.completed, p.total, p.unit) == (7, 10, "samples")
    assert p.stage == "mmlu_anatomy 2/5"
    assert p.rate == 0.2  # two computed samples in 10 s; the cached ones cost nothing
    assert p.eta_seconds > 0
    assert [(t.task, t.completed, t.total) for t in job.status.tasks] == [
        ("gsm8k", 5, 5),
        ("mmlu_anatomy", 2, 5),
    ]
    assert job.status.failed_samples == 1
    assert list(job.spec.tasks) == ["gsm8k", "mmlu"] and job.spec.limit == 5 and job.spec.batch_size == 8
    assert job.metadata.labels == {"team": "eval"}


def test_succeeded_record_carries_scores_dimensions_and_report_in_its_operation() -> None:
    summary = EvalSummary(
        report_uri="file:///r/report.json",
        scores={"gsm8k/exact_match": 0.4, "mmlu/acc": 0.3},
        dimensions={"math": 0.4, "knowledge": 0.3},
        num_samples=10,
        num_failed=2,
    )
    progress = EvalProgress({"gsm8k": TaskProgress(5, 5), "mmlu": TaskProgress(5, 5)})
    op = wire.record_to_operation(_record(JobState.SUCCEEDED, progress, summary))
    assert op.done and op.name == "operations/evaluationJobs/ev"
    assert op.metadata.state == common_pb2.JOB_STATE_SUCCEEDED
    job = evaluation_pb2.EvaluationJob()
    assert op.response.Unpack(job)
    assert wire.scores_from_pb(job.status)["gsm8k/exact_match"][0] == 0.4
    assert dict(job.status.dimensions) == {"math": 0.4, "knowledge": 0.3}
    assert job.status.report_uri == "file:///r/report.json" and job.status.failed_samples == 2
    assert job.status.progress.fraction == 1.0


def test_failed_record_is_a_done_operation_with_the_error() -> None:
    record = _record(JobState.FAILED)
    record.message = "NotFound: model 'x' not found"
    op = wire.record_to_operation(record)
    assert op.done and op.error.message == "NotFound: model 'x' not found"
    assert op.metadata.progress.completed == 0 and op.metadata.progress.stage == ""
