"""The channel between the training workers and the driver: progress up, stop requests down.

A small Ray actor (``num_cpus=0``) created by the driver and handed to every worker. Rank 0 pushes one
record per optimizer step and the URI of each checkpoint it commits; every worker registers its PID
when it starts (the kill test uses them, and rank 0's registrations count worker-group restarts);
a worker that hits a fatal, non-retriable failure (NaN loss) records it so the restarted group does
not repeat it. The driver drains records every few hundred milliseconds and posts stop requests
(cancel, deadline) that rank 0 reads at each step boundary and broadcasts to the other ranks.

Why an actor rather than ``ray.train.report``: in Ray Train v2 (the default in Ray 2.60) ``fit()``
blocks and reported results reach the driver only at the end (or through experimental callbacks), and
``report`` is tied to Ray's own checkpoint storage; the actor gives live per-step progress, a
downward stop channel and survives worker-group restarts because the driver owns it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["ChannelSnapshot", "ProgressState", "start_channel"]


@dataclass
class ChannelSnapshot:
    """What the driver learns in one ``drain``: new step records and the current state."""

    records: list[dict[str, Any]] = field(default_factory=list)
    pids: dict[int, int] = field(default_factory=dict)
    starts: int = 0
    last_checkpoint: str | None = None
    failure: tuple[str, str] | None = None
    stop_reason: str | None = None

    @property
    def restarts(self) -> int:
        return max(self.starts - 1, 0)


class ProgressState:
    """The actor's state (a plain class, so its logic is testable without Ray)."""

    def __init__(self) -> None:
        self._records: list[dict[str, Any]] = []
        self._pids: dict[int, int] = {}
        self._starts = 0
        self._checkpoint: str | None = None
        self._failure: tuple[str, str] | None = None
        self._stop: str | None = None

    def worker_started(self, rank: int, pid: int) -> tuple[str, str] | None:
        """Register a worker; returns a fatal failure recorded earlier (the worker then exits)."""
        self._pids[rank] = pid
        if rank == 0:
            self._starts += 1
        return self._failure

    def push(self, record: dict[str, Any]) -> None:
        self._records.append(record)

    def checkpointed(self, uri: str) -> None:
        self._checkpoint = uri

    def fail(self, reason: str, message: str) -> None:
        if self._failure is None:
            self._failure = (reason, message)

    def request_stop(self, reason: str) -> None:
        if self._stop is None:
            self._stop = reason

    def stop_reason(self) -> str | None:
        return self._stop

    def drain(self) -> ChannelSnapshot:
        records, self._records = self._records, []
        return ChannelSnapshot(
            records, dict(self._pids), self._starts, self._checkpoint, self._failure, self._stop
        )


def start_channel() -> Any:
    """A new channel actor on the current Ray cluster (the caller owns it and kills it when done)."""
    import ray

    return ray.remote(num_cpus=0)(ProgressState).remote()
