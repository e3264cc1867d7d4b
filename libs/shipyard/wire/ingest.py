"""Wire <-> domain conversion for the ingest service: protobuf messages in, plain dicts/records out.

The core never sees protobuf; this module is the only place that knows both shapes.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import json_format

from shipyard.api.v1 import common_pb2, ingest_pb2
from shipyard.data.jobs import IngestJobRecord
from shipyard.lifecycle import JobState
from shipyard.wire import common

COLLECTION = "ingestJobs"


def _set_fields(msg: Any) -> dict[str, Any]:
    """Only the fields the caller set, so the spec's documented defaults apply to the rest; keys use the
    JSON (camelCase) names, as in a manifest, so error paths read the same on every path."""
    return {f.json_name: v for f, v in msg.ListFields()}


def spec_from_pb(spec: ingest_pb2.IngestJobSpec) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.HasField("input"):
        out["input"] = _set_fields(spec.input)
    if spec.HasField("output"):
        out["output"] = _set_fields(spec.output)
    if spec.HasField("execution"):
        out["execution"] = _set_fields(spec.execution)
    out["steps"] = [
        {"type": s.type, "params": common.integral(json_format.MessageToDict(s.params))} for s in spec.steps
    ]
    return out


def spec_to_pb(spec: dict[str, Any]) -> ingest_pb2.IngestJobSpec:
    inp, out, ex = spec["input"], spec["output"], spec.get("execution") or {}
    msg = ingest_pb2.IngestJobSpec(
        input=ingest_pb2.IngestInput(
            uri=inp["uri"],
            format=inp.get("format") or "",
            glob=inp.get("glob") or "",
            text_field=inp.get("text_field") or "",
            id_field=inp.get("id_field") or "",
            text_split=inp.get("text_split") or "",
            shard_bytes=int(inp.get("shard_bytes") or 0),
        ),
        output=ingest_pb2.IngestOutput(uri=out["uri"], format=out.get("format") or ""),
        execution=ingest_pb2.IngestExecution(
            executor=ex.get("executor") or "", workers=ex.get("workers") or 0
        ),
    )
    for step in spec.get("steps", []):
        pb = msg.steps.add(type=step["type"])
        pb.params.update({k: v for k, v in step.items() if k != "type"})
    return msg


def _progress(r: IngestJobRecord) -> common_pb2.Progress:
    p = r.progress
    return common.progress_pb(
        completed=p.completed if p else 0,
        total=p.total if p else 0,
        unit="tasks",
        stage=p.stage if p else "",
        rate=p.documents_read / p.elapsed if p and p.elapsed > 0 else 0.0,
        rate_unit="documents/s",
        elapsed=p.elapsed if p else 0.0,
        done=r.state is JobState.SUCCEEDED,
    )


def record_to_pb(r: IngestJobRecord) -> ingest_pb2.IngestJob:
    status = ingest_pb2.IngestJobStatus(
        state=common.state_to_pb(r.state),
        progress=_progress(r),
        conditions=common.conditions_to_pb(r),
        documents_read=r.progress.documents_read if r.progress else 0,
        start_time=common.timestamp(r.start_time),
        completion_time=common.timestamp(r.completion_time),
        message=r.message,
    )
    if r.result is not None:
        res = r.result
        status.documents_read = res.documents_read
        status.manifest_uri = res.manifest_uri
        status.quarantined = res.quarantined
        status.quarantine_uri = res.quarantine_uri
        status.documents_written = res.documents_written
        status.tokens_written = res.tokens_written
        for s in res.steps:
            status.steps.add(
                name=s.name,
                docs_in=s.docs_in,
                docs_out=s.docs_out,
                dropped=dict(s.dropped),
                extra=dict(s.extra),
            )
    return ingest_pb2.IngestJob(metadata=common.metadata_to_pb(r), spec=spec_to_pb(r.spec), status=status)


def record_to_operation(r: IngestJobRecord) -> common_pb2.Operation:
    job = record_to_pb(r)
    return common.operation(r, COLLECTION, job, job.status.progress)
