"""Run one job to completion in this process (embedded mode) and follow it, for ``shipyard <kind> run``.

The job goes through the same ``JobManager`` as in the service, so it is recorded under the storage root
(``shipyard jobs`` lists it) and validated identically. Ctrl-C cancels it and waits for it to stop.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from shipyard.cli import display
from shipyard.errors import Cancelled, ShipyardError
from shipyard.jobs.manager import JobManager
from shipyard.jobs.record import JobRecord
from shipyard.lifecycle import JobState

R = TypeVar("R")
P = TypeVar("P")


def run_to_completion(
    manager: JobManager[R, P],
    name: str,
    spec: dict[str, Any],
    labels: dict[str, str],
    on_update: Callable[[JobRecord[R, P]], None],
) -> R:
    """Create (or rerun) the job, stream its updates to ``on_update``, return its result.

    Raises ``Cancelled`` after Ctrl-C, and the job's failure as a ``ShipyardError`` with its reason.
    """
    try:
        manager.create(name, spec, labels, replace_finished=True)
        final = _follow(manager, name, on_update)
    finally:
        manager.close()
    if final.state is JobState.SUCCEEDED and final.result is not None:
        return final.result
    if final.state is JobState.CANCELLED:
        raise Cancelled(final.message or "cancelled")
    reason = final.conditions[-1].reason if final.conditions else "Failed"
    raise _JobFailed(f"{reason}: {final.message}")


def _follow(
    manager: JobManager[R, P], name: str, on_update: Callable[[JobRecord[R, P]], None]
) -> JobRecord[R, P]:
    last: JobRecord[R, P] | None = None
    while True:
        try:
            for record in manager.watch(name):
                last = record
                on_update(record)
            assert last is not None
            return last
        except KeyboardInterrupt:
            display.console.print("[yellow]cancelling…[/]")
            manager.cancel(name)


class _JobFailed(ShipyardError):
    """A job this command ran ended FAILED; the message carries the status reason."""
