"""``JobManager``: create, run in the background, watch, cancel, suspend and list jobs of one kind.

Records live in memory and in a ``JobStore`` (so a restarted service keeps its history and resumes
unfinished jobs); each job runs on a small thread pool through the kind's ``JobRunner``; progress
callbacks become record updates that ``watch`` streams. No gRPC here: servicers and the CLI are thin
edges over this class.
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
from typing import Any, Generic

from pydantic import ValidationError

from shipyard.errors import AlreadyExists, Cancelled, InvalidArgument, NotFound, ShipyardError
from shipyard.jobs.metrics import JobMetrics
from shipyard.jobs.record import JobRecord, JobRunner, P, R
from shipyard.jobs.store import JobStore
from shipyard.lifecycle import JobState, check_transition, condition_for
from shipyard.resources.meta import Metadata
from shipyard.storage.base import Storage

log = logging.getLogger(__name__)
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100


class JobManager(Generic[R, P]):
    def __init__(
        self,
        runner: JobRunner[R, P],
        storage: Storage,
        root_uri: str,
        *,
        max_concurrent_jobs: int = 2,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        metrics: JobMetrics | None = None,
        recover: bool = True,
    ) -> None:
        """``recover``: resume the unfinished jobs found in the store (a service does; a one-shot CLI run
        does not, and may then replace a stale record of a run that died with its process)."""
        self._runner = runner
        self._store = JobStore(storage, root_uri, runner)
        self._clock = clock
        self._metrics = metrics or JobMetrics()
        self._lock = threading.Condition()
        self._jobs: dict[str, JobRecord[R, P]] = {}
        self._cancels: dict[str, threading.Event] = {}
        self._pool = cf.ThreadPoolExecutor(max_concurrent_jobs, thread_name_prefix=f"{runner.kind}-job")
        self._closed = False
        self._collection = f"{runner.kind}Jobs"
        self._submitted: set[str] = set()  # jobs this manager started (others are stale or finished)
        self._recover(resume=recover)

    # -- commands -------------------------------------------------------------------------------

    def create(
        self,
        name: str | None,
        spec: dict[str, Any],
        labels: dict[str, str] | None = None,
        *,
        validate_only: bool = False,
        replace_finished: bool = False,
    ) -> JobRecord[R, P]:
        """Validate completely, then record the job and start it (or leave it suspended).

        ``replace_finished`` lets a finished job's name be reused (the CLI reruns a manifest this way);
        an unfinished job with the name is always ``AlreadyExists``.
        """
        name = name or f"{self._runner.kind}-{uuid.uuid4().hex[:8]}"
        try:
            Metadata(name=name, labels=labels or {})
        except ValidationError as exc:
            raise InvalidArgument.field("job_id", exc.errors()[0]["msg"]) from None
        normalized = self._runner.validate(name, spec)
        now = self._clock()
        record: JobRecord[R, P] = JobRecord(
            name=name,
            uid=str(uuid.uuid4()),
            spec=normalized,
            labels=dict(labels or {}),
            state=JobState.PENDING,
            create_time=now,
            update_time=now,
            conditions=[condition_for(JobState.PENDING, now)],
        )
        if validate_only:
            return record
        with self._lock:
            existing = self._jobs.get(name)
            replaceable = existing is not None and (existing.state.terminal or name not in self._submitted)
            if existing is not None and not (replace_finished and replaceable):
                state = existing.state.value
                raise AlreadyExists(f"{self._runner.kind} job {name!r} already exists ({state})")
            self._jobs[name] = record
            self._cancels[name] = threading.Event()
            self._changed(record, persist=True)
            if self._runner.suspended(normalized):
                self._set_state(record, JobState.SUSPENDED, reason="SuspendRequested")
                return dataclasses.replace(record)
        self._submit(name)
        return self.get(name)

    def cancel(self, name: str) -> JobRecord[R, P]:
        with self._lock:
            record = self._live(name)
            if record.state in (JobState.PENDING, JobState.SUSPENDED):
                self._set_state(record, JobState.CANCELLED, message="cancelled before it started")
            else:
                check_transition(record.state, JobState.CANCELLING, what=f"{self._runner.kind} job {name!r}")
                self._set_state(record, JobState.CANCELLING)
            self._cancels[name].set()
            return dataclasses.replace(record)

    def resume(self, name: str) -> JobRecord[R, P]:
        """Start a suspended job (like setting ``spec.suspend: false`` on the custom resource)."""
        with self._lock:
            record = self._live(name)
            check_transition(record.state, JobState.PENDING, what=f"{self._runner.kind} job {name!r}")
            self._set_state(record, JobState.PENDING, reason="Resumed")
        self._submit(name)
        return self.get(name)

    # -- queries --------------------------------------------------------------------------------

    def get(self, name: str) -> JobRecord[R, P]:
        with self._lock:
            return dataclasses.replace(self._live(name))

    def list(
        self, page_size: int = 0, page_token: str = "", state: JobState | None = None
    ) -> tuple[list[JobRecord[R, P]], str]:
        """Jobs oldest first; ``page_token`` is opaque (it encodes the last job of the previous page)."""
        if page_size < 0:
            raise InvalidArgument.field("page_size", "must be >= 0")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        after = _decode_token(page_token)
        with self._lock:
            jobs = sorted(self._jobs.values(), key=_order_key)
            if state is not None:
                jobs = [j for j in jobs if j.state is state]
            if after is not None:
                jobs = [j for j in jobs if _order_key(j) > after]
            page = [dataclasses.replace(j) for j in jobs[:size]]
        token = _encode_token(page[-1]) if len(jobs) > size and page else ""
        return page, token

    def watch(self, name: str, is_active: Callable[[], bool] = lambda: True) -> Iterator[JobRecord[R, P]]:
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
        """Stop: running jobs are interrupted and stay resumable (they continue on the next start)."""
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
            if record.state is not JobState.PENDING or self._closed:
                return
            record.start_time = record.start_time or self._clock()
            self._set_state(record, JobState.RUNNING)
            spec, labels, cancel = record.spec, dict(record.labels), self._cancels[name]
        try:
            result = self._runner.run(name, spec, labels, lambda p: self._progress(name, p), cancel)
        except Cancelled as exc:
            self._finish(name, JobState.CANCELLED, message=exc.message, reason="Cancelled")
        except ShipyardError as exc:
            self._finish(
                name, JobState.FAILED, message=str(exc), reason=getattr(exc, "reason", "") or _reason(exc)
            )
        except Exception as exc:  # a bug: keep it on the job record instead of losing it in a thread
            log.exception("%s job %s failed", self._runner.kind, name)
            self._finish(name, JobState.FAILED, message=f"internal error: {exc}", reason="InternalError")
        else:
            self._finish(name, JobState.SUCCEEDED, result=result)

    def _progress(self, name: str, progress: P) -> None:
        with self._lock:
            record = self._jobs[name]
            record.progress = progress
            self._changed(record)

    def _finish(
        self, name: str, state: JobState, *, message: str = "", reason: str = "", result: R | None = None
    ) -> None:
        with self._lock:
            record = self._jobs[name]
            if self._closed and state is JobState.CANCELLED and record.state is not JobState.CANCELLING:
                # Service shutdown interrupted the job: keep it resumable instead of cancelled.
                self._set_state(
                    record, JobState.PENDING, reason="ServiceRestart", message="resumes on restart"
                )
                return
            record.result = result
            record.completion_time = self._clock()
            self._set_state(record, state, reason=reason, message=message)

    def _set_state(
        self, record: JobRecord[R, P], state: JobState, *, reason: str = "", message: str = ""
    ) -> None:
        check_transition(record.state, state, what=f"{self._runner.kind} job {record.name!r}")
        self._metrics.state_changed(self._runner.kind, record.state, state)
        record.state = state
        record.message = message
        record.conditions.append(condition_for(state, self._clock(), reason=reason, message=message))
        self._changed(record, persist=True)

    def _changed(self, record: JobRecord[R, P], *, persist: bool = False) -> None:
        record.version += 1
        record.update_time = self._clock()
        if persist:
            self._store.save(record)
        self._lock.notify_all()

    def _live(self, name: str) -> JobRecord[R, P]:
        key = name.removeprefix(f"{self._collection}/")
        if key not in self._jobs:
            raise NotFound(f"{self._runner.kind} job {key!r} not found")
        return self._jobs[key]

    def _submit(self, name: str) -> None:
        self._submitted.add(name)
        self._pool.submit(self._run, name)

    def _recover(self, *, resume: bool) -> None:
        for record in self._store.load():
            self._jobs[record.name] = record
            self._cancels[record.name] = threading.Event()
            if resume and record.state in (JobState.RUNNING, JobState.CANCELLING):
                record.state = JobState.PENDING  # resumes from its own checkpoints/markers
            if resume and record.state is JobState.PENDING:
                self._submit(record.name)


def _reason(exc: ShipyardError) -> str:
    return {
        "NOT_FOUND": "NotFound",
        "INVALID_ARGUMENT": "InvalidSpec",
        "DEADLINE_EXCEEDED": "DeadlineExceeded",
        "RESOURCE_EXHAUSTED": "ResourceExhausted",
        "UNAVAILABLE": "Unavailable",
    }.get(exc.code.value, "Error")


def _order_key(record: JobRecord[Any, Any]) -> tuple[str, str]:
    return record.create_time.isoformat(), record.name


def _encode_token(record: JobRecord[Any, Any]) -> str:
    created, name = _order_key(record)
    return base64.urlsafe_b64encode(f"{created}|{name}".encode()).decode()


def _decode_token(token: str) -> tuple[str, str] | None:
    if not token:
        return None
    try:
        created, name = base64.urlsafe_b64decode(token.encode()).decode().split("|", 1)
    except (ValueError, UnicodeDecodeError):
        raise InvalidArgument.field("page_token", "not a token returned by a previous List call") from None
    return created, name
