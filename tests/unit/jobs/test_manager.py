"""JobManager's lifecycle with a small real runner: suspend/resume, failures, cancel, restarts."""

from __future__ import annotations

import pathlib
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from shipyard.errors import Cancelled, FailedPrecondition, InvalidArgument, ResourceExhausted
from shipyard.jobs.manager import JobManager
from shipyard.lifecycle import JobState
from shipyard.storage.local import LocalStorage
from shipyard.storage.uri import from_local_path


class CountingRunner:
    """Counts to ``spec['n']``, reporting each number; waits on ``gate`` first when the spec asks."""

    kind = "count"

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.started = threading.Event()

    def validate(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        if spec.get("n", 0) < 0:
            raise InvalidArgument.field("spec.n", "must be >= 0")
        return {"n": 3, **spec}

    def suspended(self, spec: dict[str, Any]) -> bool:
        return bool(spec.get("suspend"))

    def run(
        self,
        name: str,
        spec: dict[str, Any],
        labels: dict[str, str],
        on_progress: Callable[[int], None],
        cancel: threading.Event,
    ) -> int:
        self.started.set()
        if spec.get("wait"):
            while not self.gate.wait(0.01):
                if cancel.is_set():
                    raise Cancelled("stopped")
        if spec.get("fail"):
            raise ResourceExhausted("out of memory")
        for i in range(spec["n"]):
            on_progress(i + 1)
        return spec["n"] * 10

    def progress_to_json(self, p: int) -> dict[str, Any]:
        return {"p": p}

    def progress_from_json(self, d: dict[str, Any]) -> int:
        return int(d["p"])

    def result_to_json(self, r: int) -> dict[str, Any]:
        return {"r": r}

    def result_from_json(self, d: dict[str, Any]) -> int:
        return int(d["r"])


@pytest.fixture
def runner() -> CountingRunner:
    return CountingRunner()


@pytest.fixture
def manager(runner: CountingRunner, tmp_path: pathlib.Path) -> Iterator[JobManager[int, int]]:
    m = JobManager(runner, LocalStorage(), from_local_path(tmp_path), max_concurrent_jobs=1)
    yield m
    m.close()


def _final(m: JobManager[int, int], name: str) -> Any:
    return list(m.watch(name))[-1]


def test_job_runs_and_reports_progress_then_result(manager: JobManager[int, int]) -> None:
    manager.create("a", {"n": 4})
    updates = list(manager.watch("a"))
    assert updates[-1].state is JobState.SUCCEEDED and updates[-1].result == 40
    assert updates[-1].progress == 4
    assert [c.type for c in updates[-1].conditions] == ["Created", "Running", "Succeeded"]


def test_suspended_job_waits_until_resumed(manager: JobManager[int, int], runner: CountingRunner) -> None:
    created = manager.create("s", {"suspend": True})
    assert created.state is JobState.SUSPENDED and not runner.started.is_set()
    manager.resume("s")
    assert _final(manager, "s").state is JobState.SUCCEEDED
    with pytest.raises(FailedPrecondition):
        manager.resume("s")


def test_failure_keeps_the_reason(manager: JobManager[int, int]) -> None:
    manager.create("f", {"fail": True})
    final = _final(manager, "f")
    assert final.state is JobState.FAILED and final.conditions[-1].reason == "ResourceExhausted"
    assert "out of memory" in final.message


def test_invalid_spec_creates_nothing(manager: JobManager[int, int]) -> None:
    with pytest.raises(InvalidArgument):
        manager.create("bad", {"n": -1})
    with pytest.raises(InvalidArgument) as exc:
        manager.create("Bad_Name", {})
    assert exc.value.violations[0].field == "job_id"
    assert manager.list()[0] == []


def test_cancel_running_job(manager: JobManager[int, int], runner: CountingRunner) -> None:
    manager.create("c", {"wait": True})
    assert runner.started.wait(10)
    assert manager.cancel("c").state is JobState.CANCELLING
    assert _final(manager, "c").state is JobState.CANCELLED


def test_interrupted_job_resumes_on_the_next_start(runner: CountingRunner, tmp_path: pathlib.Path) -> None:
    first = JobManager(runner, LocalStorage(), from_local_path(tmp_path))
    first.create("r", {"wait": True})
    assert runner.started.wait(10)
    first.close()  # a service shutdown mid-run
    assert first.get("r").state is JobState.PENDING
    runner.gate.set()
    second = JobManager(runner, LocalStorage(), from_local_path(tmp_path))
    try:
        assert _final(second, "r").state is JobState.SUCCEEDED
    finally:
        second.close()


def test_list_pages_and_filters(manager: JobManager[int, int]) -> None:
    for name in ("j1", "j2", "j3"):
        manager.create(name, {})
        _final(manager, name)
    page, token = manager.list(page_size=2)
    rest, end = manager.list(page_size=2, page_token=token)
    assert [j.name for j in page + rest] == ["j1", "j2", "j3"] and end == ""
    assert manager.list(state=JobState.FAILED)[0] == []
