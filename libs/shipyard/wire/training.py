"""Wire <-> domain conversion for the training service."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.protobuf import json_format

from shipyard.api.v1 import common_pb2, training_pb2
from shipyard.lifecycle import JobState
from shipyard.wire import common

if TYPE_CHECKING:
    from shipyard.training.jobs import TrainingJobRecord

COLLECTION = "trainingJobs"


def spec_from_pb(spec: training_pb2.TrainingJobSpec) -> dict[str, Any]:
    """Only the fields the caller set (unset optional fields take the spec's documented defaults).

    Keys use the JSON (camelCase) names, as in a manifest, so error paths read the same on every path.
    """
    data = json_format.MessageToDict(spec)
    if "modelOverrides" in data:
        data["modelOverrides"] = common.integral(data["modelOverrides"])
    return data


def spec_to_pb(spec: dict[str, Any]) -> training_pb2.TrainingJobSpec:
    return json_format.ParseDict(spec, training_pb2.TrainingJobSpec())


def record_to_pb(r: TrainingJobRecord) -> training_pb2.TrainingJob:
    p = r.progress
    res = r.result
    status = training_pb2.TrainingJobStatus(
        state=common.state_to_pb(r.state),
        progress=common.progress_pb(
            completed=p.step if p else 0,
            total=p.total_steps if p else 0,
            unit="steps",
            stage=f"step {p.step}/{p.total_steps}" if p else "",
            rate=p.metrics.get("tokens_per_s", 0.0) if p else 0.0,
            rate_unit="tokens/s",
            elapsed=p.elapsed if p else 0.0,
            done=r.state is JobState.SUCCEEDED,
        ),
        conditions=common.conditions_to_pb(r),
        start_time=common.timestamp(r.start_time),
        completion_time=common.timestamp(r.completion_time),
        message=r.message,
    )
    if p is not None:
        status.step, status.total_steps, status.tokens_seen = p.step, p.total_steps, p.tokens_seen
        status.last_checkpoint = p.last_checkpoint or ""
        status.restarts = p.restarts
        status.metrics.CopyFrom(_metrics(p.metrics))
    if res is not None:
        status.step, status.tokens_seen = res.steps, res.tokens_seen
        status.output_model = res.output_model_uri
        status.registered_model = res.registered or ""
        status.metrics_uri = res.metrics_uri
        status.last_checkpoint = res.last_checkpoint or ""
        status.restarts = res.restarts
        status.metrics.CopyFrom(_metrics(res.final_metrics))
        status.merged_model = res.merged_model_uri or ""
        status.registered_merged_model = res.merged_registered or ""
        if res.data_report:
            status.data_report.CopyFrom(_data_report(res.data_report))
    return training_pb2.TrainingJob(metadata=common.metadata_to_pb(r), spec=spec_to_pb(r.spec), status=status)


def _metrics(m: dict[str, float]) -> training_pb2.TrainingMetrics:
    return training_pb2.TrainingMetrics(
        loss=m.get("loss", 0.0),
        learning_rate=m.get("lr", 0.0),
        tokens_per_second=m.get("tokens_per_s", 0.0),
        step_time_seconds=m.get("step_time_s", 0.0),
        mfu=m.get("mfu", 0.0) or 0.0,
        grad_norm=m.get("grad_norm", 0.0),
        eval_loss=m.get("eval_loss"),
        reward_accuracy=m.get("reward_accuracy"),
        reward_margin=m.get("reward_margin"),
    )


def _data_report(r: dict[str, Any]) -> training_pb2.DataReport:
    """The finetune's data report (``shipyard.finetune.dataset.DataReport`` as a dict)."""
    return training_pb2.DataReport(
        format=str(r.get("format", "")),
        total=int(r.get("total", 0)),
        kept=int(r.get("kept", 0)),
        bad=int(r.get("bad", 0)),
        truncated=int(r.get("truncated", 0)),
        reasons={str(k): int(v) for k, v in (r.get("reasons") or {}).items()},
        bad_examples=[
            f"[{b.get('index')}] {b.get('reason')}: {b.get('detail') or b.get('excerpt', '')}"
            for b in r.get("bad_examples") or []
        ],
    )


def record_to_operation(r: TrainingJobRecord) -> common_pb2.Operation:
    job = record_to_pb(r)
    return common.operation(r, COLLECTION, job, job.status.progress)
