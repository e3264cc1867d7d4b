"""Ingest jobs as resources: create, run in the background, watch, cancel, list — no gRPC inside.

``IngestJobManager`` owns the job records (persisted as JSON under ``<root>/jobs/ingest/`` so a
restarted server lists old jobs and resumes unfinished ones from their done-markers), runs each job
with ``run_ingest`` on a small thread pool, and turns progress callbacks into record updates that
watchers see. The gRPC servicer and the CLI are thin edges over it.
"""

from __future__ import annotations

import base64
import concurrent.futures as cf
import dataclasses
import logging
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

from pydantic import ValidationError

from shipyard.config import StorageConfig
from shipyard.data.executor.runner import IngestResult, ProgressUpdate, run_ingest
from shipyard.data.job_metrics import IngestMetrics
from shipyard.data.job_store import load_records, save_record
from shipyard.data.spec import IngestJob, Metadata, parse_spec
from shipyard.data.steps.readers import make_reader
from shipyard.errors import AlreadyExists, Cancelled, InvalidArgument, NotFound, ShipyardError
from shipyard.lifecycle import Condition, JobState, check_transition, condition_for
from shipyard.storage.routing import RoutingStorage
from shipyard.storage.uri import join

log = logging.getLogger(__name__)
MAX_PAGE_SIZE = 1000


@dataclasses.dataclass
class IngestJobRecord:
    """Everything known about one job; a snapshot is handed out, never the live object."""

    name: str
    uid: str
    spec: dict[str, Any]
    labels: dict[str, str]
    state: JobState
    create_time: datetime
    update_time: datetime
    conditions: list[Condition] = dataclasses.field(default_factory=list)
    stage: str = ""
    completed: int = 0
    total: int = 0
    documents_read: int = 0
    elapsed: float = 0.0
    result: IngestResult | None = None
    message: str = ""
    start_time: datetime | None = None
    completion_time: datetime | None = None
    version: int = 0

    @property
    def fraction(self) -> float:
        return (
            self.completed / self.total if self.total else (1.0 if self.state is JobState.SUCCEEDED else 0.0)
        )

    @property
    def rate(self) -> float:
        """Documents read per second."""
        return self.documents_read / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float:
        f = self.fraction
        return self.elapsed * (1 - f) / f if 0 < f < 1 else 0.0


class IngestJobManager:
    def __init__(
        self,
        storage_root: str,
        storage_config: StorageConfig | None = None,
        *,
        workers: int = 1,
        max_concurrent_jobs: int = 2,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: IngestMetrics | None = None,
    ) -> None:
        self._storage = RoutingStorage(storage_config)
        self._storage_config = storage_config
        self._jobs_uri = join(storage_root, "jobs", "ingest")
        self._workers = workers
        self._clock = clock
        self._metrics = metrics or IngestMetrics()
        self._lock = threading.Condition()
        self._jobs: dict[str, IngestJobRecord] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._pool = cf.ThreadPoolExecutor(max_concurrent_jobs, thread_name_prefix="ingest-job")
        self._closed = False
        self._recover()

    # -- commands -------------------------------------------------------------------------------

    def create(
        self,
        name: str | None,
        spec: dict[str, Any],
        labels: dict[str, str] | None = None,
        *,
        validate_only: bool = False,
    ) -> IngestJobRecord:
        """Validate ``spec`` (fields, step params, input exists) and start the job."""
        name = name or f"ingest-{uuid.uuid4().hex[:8]}"
        try:
            Metadata(name=name, labels=labels or {})
        except ValidationError as exc:
            raise InvalidArgument.field("job_id", exc.errors()[0]["msg"]) from None
        parsed = parse_spec(spec)
        if not make_reader(parsed.input).shards(self._storage):
            raise NotFound(f"spec.input.uri: no input files match {parsed.input.uri!r}")
        now = self._clock()
        record = IngestJobRecord(
            name=name,
            uid=str(uuid.uuid4()),
            spec=parsed.model_dump(mode="json"),
            labels=dict(labels or {}),
            state=JobState.PENDING,
            create_time=now,
            update_time=now,
            conditions=[condition_for(JobState.PENDING, now)],
        )
        if validate_only:
            return record
        with self._lock:
            if name in self._jobs:
                raise AlreadyExists(f"ingest job {name!r} already exists")
            self._jobs[name] = record
            self._cancels[name] = threading.Event()
            self._changed(record)
        self._pool.submit(self._run, name)
        return self.get(name)

    def cancel(self, name: str) -> IngestJobRecord:
        with self._lock:
            record = self._live(name)
            if record.state is JobState.PENDING:
                self._set_state(record, JobState.CANCELLED, message="cancelled before it started")
            else:
                check_transition(record.state, JobState.CANCELLING, what=f"ingest job {name!r}")
                self._set_state(record, JobState.CANCELLING)
            self._cancels[name].set()
            return dataclasses.replace(record)

    # -- queries --------------------------------------------------------------------------------

    def get(self, name: str) -> IngestJobRecord:
        with self._lock:
            return dataclasses.replace(self._live(name))

    def list(
        self, page_size: int = 0, page_token: str = "", state: JobState | None = None
    ) -> tuple[list[IngestJobRecord], str]:
        """Jobs oldest first; ``page_token`` is opaque (the last name of the previous page)."""
        if page_size < 0:
            raise InvalidArgument.field("page_size", "must be >= 0")
        size = min(page_size or 100, MAX_PAGE_SIZE)
        after = _decode_token(page_token)
        with self._lock:
            jobs = sorted(self._jobs.values(), key=lambda r: (r.create_time, r.name))
            if state is not None:
                jobs = [j for j in jobs if j.state is state]
            if after is not None:
                keys = [(j.create_time.isoformat(), j.name) for j in jobs]
                jobs = [j for j, k in zip(jobs, keys, strict=True) if k > after]
            page = [dataclasses.replace(j) for j in jobs[:size]]
        more = len(jobs) > size
        token = _encode_token(page[-1]) if more and page else ""
        return page, token

    def watch(self, name: str, is_active: Callable[[], bool] = lambda: True) -> Iterator[IngestJobRecord]:
        """Yield the job now and after every change, until it is finished or the caller goes away."""
        seen = -1

        def changed(last: int) -> bool:
            return self._live(name).version != last or self._closed or not is_active()

        while True:
            with self._lock:
                # The timeout only bounds how late a vanished caller is noticed (is_active is polled).
                self._lock.wait_for(lambda last=seen: changed(last), timeout=1.0)
                record = dataclasses.replace(self._live(name))
            if not is_active() or (self._closed and record.version == seen):
                return
            if record.version != seen:
                seen = record.version
                yield record
                if record.state.terminal:
                    return

    def close(self) -> None:
        """Stop accepting work; running jobs are cancelled (they resume on the next start)."""
        with self._lock:
            self._closed = True
            for ev in self._cancels.values():
                ev.set()
            self._lock.notify_all()
        self._pool.shutdown(wait=True, cancel_futures=True)

    # -- internals ------------------------------------------------------------------------------

    def _run(self, name: str) -> None:
        with self._lock:
            record = self._jobs[name]
            if record.state is not JobState.PENDING:
                return
            record.start_time = self._clock()
            self._set_state(record, JobState.RUNNING)
            job = IngestJob(metadata=Metadata(name=name, labels=record.labels), spec=record.spec)
            cancel = self._cancels[name]
        try:
            result = run_ingest(
                job,
                storage_config=self._storage_config,
                workers=self._workers,
                on_progress=lambda p: self._progress(name, p),
                cancel=cancel,
            )
        except Cancelled as exc:
            self._finish(name, JobState.CANCELLED, message=exc.message)
        except ShipyardError as exc:
            self._finish(name, JobState.FAILED, message=str(exc), reason=_reason(exc))
        except Exception as exc:  # a bug: record it on the job instead of losing it in a thread
            log.exception("ingest job %s failed", name)
            self._finish(name, JobState.FAILED, message=f"internal error: {exc}", reason="InternalError")
        else:
            self._finish(name, JobState.SUCCEEDED, result=result)

    def _progress(self, name: str, p: ProgressUpdate) -> None:
        with self._lock:
            record = self._jobs[name]
            self._metrics.documents_read(p.documents_read - record.documents_read)
            record.stage, record.completed, record.total = p.stage, p.completed, p.total
            record.documents_read, record.elapsed = p.documents_read, p.elapsed
            self._changed(record)

    def _finish(
        self,
        name: str,
        state: JobState,
        *,
        message: str = "",
        reason: str = "",
        result: IngestResult | None = None,
    ) -> None:
        with self._lock:
            record = self._jobs[name]
            if self._closed and state is JobState.CANCELLED and record.state is not JobState.CANCELLING:
                # Server shutdown interrupted the job: keep it resumable instead of cancelled.
                self._set_state(
                    record, JobState.PENDING, reason="ServerShutdown", message="resumes on restart"
                )
                return
            record.result = result
            record.completion_time = self._clock()
            if result is not None:
                record.completed = record.total = max(record.total, 1)
                record.documents_read = result.documents_read
            self._set_state(record, state, reason=reason, message=message)

    def _set_state(
        self, record: IngestJobRecord, state: JobState, *, reason: str = "", message: str = ""
    ) -> None:
        check_transition(record.state, state, what=f"ingest job {record.name!r}")
        self._metrics.state_changed(record.state, state)
        record.state = state
        record.message = message
        record.conditions.append(condition_for(state, self._clock(), reason=reason, message=message))
        self._changed(record, persist=True)

    def _changed(self, record: IngestJobRecord, *, persist: bool = False) -> None:
        record.version += 1
        record.update_time = self._clock()
        if persist or record.version == 1:
            save_record(self._storage, self._jobs_uri, record)
        self._lock.notify_all()

    def _live(self, name: str) -> IngestJobRecord:
        key = name.removeprefix("ingestJobs/")
        if key not in self._jobs:
            raise NotFound(f"ingest job {key!r} not found")
        return self._jobs[key]

    def _recover(self) -> None:
        for record in load_records(self._storage, self._jobs_uri):
            self._jobs[record.name] = record
            self._cancels[record.name] = threading.Event()
            if record.state in (JobState.RUNNING, JobState.CANCELLING):
                record.state = JobState.PENDING  # resumes from its done-markers
            if record.state is JobState.PENDING:
                self._pool.submit(self._run, record.name)


def _reason(exc: ShipyardError) -> str:
    return {"NOT_FOUND": "InputNotFound", "INVALID_ARGUMENT": "InvalidSpec"}.get(exc.code.value, "Error")


def _encode_token(record: IngestJobRecord) -> str:
    raw = f"{record.create_time.isoformat()}|{record.name}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: str) -> tuple[str, str] | None:
    if not token:
        return None
    try:
        created, name = base64.urlsafe_b64decode(token.encode()).decode().split("|", 1)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument.field("page_token", "not a token returned by a previous List call") from None
    return created, name
