"""The lifecycle every long-running Shipyard job follows, as one explicit state machine.

``JobState`` and the ``TRANSITIONS`` table are shared by ingest, training, finetune and evaluation
jobs; ``conditions_for`` derives the Kubernetes-style conditions from a state so gRPC status, CLI output
and custom-resource status agree.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from shipyard.errors import FailedPrecondition


class JobState(enum.Enum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLING = "CANCELLING"
    CANCELLED = "CANCELLED"
    SUSPENDED = "SUSPENDED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL


TERMINAL = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})

TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset({JobState.RUNNING, JobState.CANCELLED, JobState.FAILED, JobState.SUSPENDED}),
    # runPolicy.suspend: created but held back until resumed (Kueue-compatible).
    JobState.SUSPENDED: frozenset({JobState.PENDING, JobState.CANCELLED}),
    # RUNNING -> PENDING: a server restarted mid-run re-queues the job (it resumes from its markers).
    JobState.RUNNING: frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLING, JobState.PENDING}),
    JobState.CANCELLING: frozenset({JobState.CANCELLED, JobState.FAILED, JobState.SUCCEEDED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.FAILED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


def check_transition(current: JobState, new: JobState, *, what: str) -> None:
    """Raise ``FailedPrecondition`` unless ``current -> new`` is allowed."""
    if new not in TRANSITIONS[current]:
        raise FailedPrecondition(f"{what} is {current.value}; it cannot become {new.value}")


@dataclass(frozen=True)
class Condition:
    type: str
    status: str  # "True" | "False" | "Unknown"
    reason: str
    message: str
    last_transition_time: datetime


_CONDITION_OF = {
    JobState.PENDING: ("Created", "Pending"),
    JobState.RUNNING: ("Running", "Running"),
    JobState.CANCELLING: ("Running", "Cancelling"),
    JobState.SUCCEEDED: ("Succeeded", "Succeeded"),
    JobState.FAILED: ("Failed", "Failed"),
    JobState.CANCELLED: ("Cancelled", "Cancelled"),
    JobState.SUSPENDED: ("Suspended", "Suspended"),
}


def condition_for(state: JobState, at: datetime, *, reason: str = "", message: str = "") -> Condition:
    """The condition a job gains on entering ``state`` (reason defaults to the state's name)."""
    ctype, default_reason = _CONDITION_OF[state]
    return Condition(ctype, "True", reason or default_reason, message, at)
