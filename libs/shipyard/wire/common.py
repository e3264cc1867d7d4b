"""Wire conversions every service shares: job states, timestamps, conditions, progress, operations."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from shipyard.api.v1 import common_pb2
from shipyard.jobs.record import JobRecord
from shipyard.lifecycle import JobState

_STATE_TO_PB = {
    JobState.PENDING: common_pb2.JOB_STATE_PENDING,
    JobState.RUNNING: common_pb2.JOB_STATE_RUNNING,
    JobState.SUCCEEDED: common_pb2.JOB_STATE_SUCCEEDED,
    JobState.FAILED: common_pb2.JOB_STATE_FAILED,
    JobState.CANCELLING: common_pb2.JOB_STATE_CANCELLING,
    JobState.CANCELLED: common_pb2.JOB_STATE_CANCELLED,
    JobState.SUSPENDED: common_pb2.JOB_STATE_SUSPENDED,
}
_PB_TO_STATE = {v: k for k, v in _STATE_TO_PB.items()}

# google.rpc.Code values used for finished operations that did not succeed.
_RPC_CANCELLED = 1
_RPC_UNKNOWN = 2


def integral(value: Any) -> Any:
    """google.protobuf.Struct stores every number as a double; give integers back their type."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [integral(v) for v in value]
    return value


def state_to_pb(state: JobState) -> int:
    return _STATE_TO_PB[state]


def state_from_pb(value: int) -> JobState | None:
    """``None`` for JOB_STATE_UNSPECIFIED (e.g. "any state" in a List filter)."""
    return _PB_TO_STATE.get(value)


def state_name(value: int) -> str:
    return common_pb2.JobState.Name(value).removeprefix("JOB_STATE_")


def timestamp(dt: datetime | None) -> Timestamp | None:
    if dt is None:
        return None
    ts = Timestamp()
    ts.FromDatetime(dt)
    return ts


def metadata_to_pb(record: JobRecord[Any, Any]) -> common_pb2.ObjectMeta:
    return common_pb2.ObjectMeta(
        name=record.name,
        uid=record.uid,
        labels=record.labels,
        create_time=timestamp(record.create_time),
        update_time=timestamp(record.update_time),
    )


def conditions_to_pb(record: JobRecord[Any, Any]) -> list[common_pb2.Condition]:
    return [
        common_pb2.Condition(
            type=c.type,
            status=c.status,
            reason=c.reason,
            message=c.message,
            last_transition_time=timestamp(c.last_transition_time),
        )
        for c in record.conditions
    ]


def progress_pb(
    *,
    completed: int,
    total: int,
    unit: str,
    stage: str,
    rate: float,
    rate_unit: str,
    elapsed: float,
    done: bool,
) -> common_pb2.Progress:
    """Progress with the fraction and ETA derived the same way for every kind."""
    fraction = 1.0 if done else (completed / total if total else 0.0)
    eta = elapsed * (1 - fraction) / fraction if 0 < fraction < 1 else 0.0
    return common_pb2.Progress(
        fraction=fraction,
        completed=completed,
        total=total,
        unit=unit,
        stage=stage,
        rate=rate,
        rate_unit=rate_unit,
        eta_seconds=eta,
    )


def operation(
    record: JobRecord[Any, Any], collection: str, resource: Message, progress: common_pb2.Progress
) -> common_pb2.Operation:
    """The Operation for a job: done when terminal; the resource as response on success, else an error."""
    op = common_pb2.Operation(
        name=f"operations/{collection}/{record.name}",
        metadata=common_pb2.OperationMetadata(
            target=f"{collection}/{record.name}",
            state=state_to_pb(record.state),
            progress=progress,
            create_time=timestamp(record.create_time),
            update_time=timestamp(record.update_time),
        ),
        done=record.state.terminal,
    )
    if record.state is JobState.SUCCEEDED:
        op.response.Pack(resource)
    elif record.state.terminal:
        op.error.code = _RPC_CANCELLED if record.state is JobState.CANCELLED else _RPC_UNKNOWN
        op.error.message = record.message
    return op
