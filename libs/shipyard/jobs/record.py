"""One job's record and the contract a job kind implements (``JobRunner``)."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from shipyard.lifecycle import Condition, JobState

R = TypeVar("R")  # what a finished job produced
P = TypeVar("P")  # a progress report


@dataclasses.dataclass
class JobRecord(Generic[R, P]):
    """Everything known about one job; callers get snapshots (``dataclasses.replace``), never the live one."""

    name: str
    uid: str
    spec: dict[str, Any]
    labels: dict[str, str]
    state: JobState
    create_time: datetime
    update_time: datetime
    conditions: list[Condition] = dataclasses.field(default_factory=list)
    progress: P | None = None
    result: R | None = None
    message: str = ""
    start_time: datetime | None = None
    completion_time: datetime | None = None
    version: int = 0  # bumped on every change; watchers compare it


class JobRunner(Protocol[R, P]):
    """What a job kind supplies to ``JobManager``."""

    kind: str  # "ingest", "training": names the collection ("ingestJobs") and the store folder

    def validate(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Check ``spec`` completely (fields and the world: inputs exist ...) and return it normalized.

        Raises ``InvalidArgument``/``NotFound`` naming fields; nothing may run before this passes.
        """

    def run(
        self,
        name: str,
        spec: dict[str, Any],
        labels: dict[str, str],
        on_progress: Callable[[P], None],
        cancel: threading.Event,
    ) -> R:
        """Run the job to the end; raise ``Cancelled`` when ``cancel`` was set, typed errors on failure."""

    def suspended(self, spec: dict[str, Any]) -> bool:
        """Whether the spec asks to be created without running (``runPolicy.suspend``)."""

    def progress_to_json(self, progress: P) -> dict[str, Any]: ...

    def progress_from_json(self, data: dict[str, Any]) -> P: ...

    def result_to_json(self, result: R) -> dict[str, Any]: ...

    def result_from_json(self, data: dict[str, Any]) -> R: ...
