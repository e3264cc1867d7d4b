"""Job records as one JSON object per job under ``<root>/jobs/<kind>/``, written atomically.

A restarted service reads them back, so its job history survives and unfinished jobs resume.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from shipyard.errors import ShipyardError
from shipyard.jobs.record import JobRecord, JobRunner
from shipyard.lifecycle import Condition, JobState
from shipyard.storage.base import Storage
from shipyard.storage.uri import join

log = logging.getLogger(__name__)


class JobStore:
    def __init__(self, storage: Storage, root_uri: str, runner: JobRunner[Any, Any]) -> None:
        self._storage = storage
        self._uri = join(root_uri, "jobs", runner.kind)
        self._runner = runner

    def save(self, record: JobRecord[Any, Any]) -> None:
        r = self._runner
        data: dict[str, Any] = {
            "name": record.name,
            "uid": record.uid,
            "spec": record.spec,
            "labels": record.labels,
            "state": record.state.value,
            "createTime": record.create_time.isoformat(),
            "updateTime": record.update_time.isoformat(),
            "startTime": _iso(record.start_time),
            "completionTime": _iso(record.completion_time),
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
            "progress": None if record.progress is None else r.progress_to_json(record.progress),
            "result": None if record.result is None else r.result_to_json(record.result),
        }
        self._storage.write_text(join(self._uri, f"{record.name}.json"), json.dumps(data, indent=1))

    def load(self) -> list[JobRecord[Any, Any]]:
        """Every stored record; an unreadable one is logged and left on disk untouched."""
        records = []
        for obj in self._storage.list(self._uri):
            if not obj.uri.endswith(".json"):
                continue
            try:
                records.append(self._decode(json.loads(self._storage.read_text(obj.uri))))
            except (ValueError, KeyError, TypeError, ShipyardError) as exc:
                log.warning("skipping unreadable job record %s: %s", obj.uri, exc)
        return records

    def _decode(self, d: dict[str, Any]) -> JobRecord[Any, Any]:
        r = self._runner
        return JobRecord(
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
            progress=r.progress_from_json(d["progress"]) if d.get("progress") else None,
            result=r.result_from_json(d["result"]) if d.get("result") else None,
        )


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def read_job_json(storage: Storage, root_uri: str, kind: str, name: str) -> dict[str, Any] | None:
    """The stored record of job ``name`` of ``kind`` as plain JSON, or None when it never ran here.

    For readers that are not the job's manager (``shipyard get``, embedded references between kinds).
    """
    uri = join(root_uri, "jobs", kind, f"{name}.json")
    if not storage.exists(uri):
        return None
    data: dict[str, Any] = json.loads(storage.read_text(uri))
    return data


def list_job_json(storage: Storage, root_uri: str, kind: str) -> list[dict[str, Any]]:
    """Every stored record of ``kind`` as plain JSON (unreadable ones skipped, as ``load`` does)."""
    records = []
    for obj in storage.list(join(root_uri, "jobs", kind)):
        if obj.uri.endswith(".json"):
            try:
                records.append(json.loads(storage.read_text(obj.uri)))
            except ValueError as exc:
                log.warning("skipping unreadable job record %s: %s", obj.uri, exc)
    return records
