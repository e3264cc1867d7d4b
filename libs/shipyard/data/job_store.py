"""Persistence of ingest job records as one JSON object per job under ``<root>/jobs/ingest/``.

Kept apart from the manager so the record format is in one place. Results are stored as a summary
plus the manifest URI; the manifest itself stays the single source of truth for the dataset.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shipyard.data.manifest import read_manifest
from shipyard.data.step import StepStats
from shipyard.errors import ShipyardError
from shipyard.lifecycle import Condition, JobState
from shipyard.storage.base import Storage
from shipyard.storage.uri import join

if TYPE_CHECKING:
    from shipyard.data.jobs import IngestJobRecord

log = logging.getLogger(__name__)


def save_record(storage: Storage, jobs_uri: str, record: IngestJobRecord) -> None:
    result = record.result
    data: dict[str, Any] = {
        "name": record.name,
        "uid": record.uid,
        "spec": record.spec,
        "labels": record.labels,
        "state": record.state.value,
        "createTime": record.create_time.isoformat(),
        "updateTime": record.update_time.isoformat(),
        "startTime": record.start_time.isoformat() if record.start_time else None,
        "completionTime": record.completion_time.isoformat() if record.completion_time else None,
        "message": record.message,
        "conditions": [
            {
                "type": c.type,
                "status": c.status,
                "reason": c.reason,
                "message": c.message,
                "lastTransitionTime": c.last_transition_time.isoformat(),
            }
            for c in record.conditions
        ],
        "result": None
        if result is None
        else {
            "manifestUri": result.manifest_uri,
            "documentsRead": result.documents_read,
            "documentsWritten": result.documents_written,
            "tokensWritten": result.tokens_written,
            "quarantined": result.quarantined,
            "quarantineUri": result.quarantine_uri,
            "steps": [s.to_dict() for s in result.steps],
        },
    }
    storage.write_text(join(jobs_uri, f"{record.name}.json"), json.dumps(data, indent=1))


def load_records(storage: Storage, jobs_uri: str) -> list[IngestJobRecord]:
    """Every stored record; an unreadable one is logged and skipped (it stays on disk untouched)."""
    from shipyard.data.executor.runner import IngestResult
    from shipyard.data.jobs import IngestJobRecord

    records = []
    for obj in storage.list(jobs_uri):
        if not obj.uri.endswith(".json"):
            continue
        try:
            d = json.loads(storage.read_text(obj.uri))
            result = None
            if d.get("result"):
                r = d["result"]
                result = IngestResult(
                    manifest_uri=r["manifestUri"],
                    manifest=read_manifest(storage, r["manifestUri"]),
                    steps=[StepStats.from_dict(s) for s in r["steps"]],
                    documents_read=r["documentsRead"],
                    documents_written=r["documentsWritten"],
                    tokens_written=r["tokensWritten"],
                    quarantined=r["quarantined"],
                    quarantine_uri=r["quarantineUri"],
                )
            records.append(
                IngestJobRecord(
                    name=d["name"],
                    uid=d["uid"],
                    spec=d["spec"],
                    labels=d["labels"],
                    state=JobState(d["state"]),
                    create_time=datetime.fromisoformat(d["createTime"]),
                    update_time=datetime.fromisoformat(d["updateTime"]),
                    start_time=_dt(d.get("startTime")),
                    completion_time=_dt(d.get("completionTime")),
                    message=d.get("message", ""),
                    conditions=[
                        Condition(
                            c["type"],
                            c["status"],
                            c["reason"],
                            c["message"],
                            datetime.fromisoformat(c["lastTransitionTime"]),
                        )
                        for c in d.get("conditions", [])
                    ],
                    result=result,
                )
            )
        except (ValueError, KeyError, ShipyardError) as exc:
            log.warning("skipping unreadable job record %s: %s", obj.uri, exc)
    return records


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
