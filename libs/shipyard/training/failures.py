"""Why a training job failed, in words a user can act on: the reason shown in the job's status.

``TrainingFailed.reason`` is a short CamelCase word (the Kubernetes condition ``reason``), and
``user_error`` says whether resubmitting unchanged can help: a NaN loss or a model that does not load is
the spec's fault (fix the spec), a crashed worker or an exhausted retry budget is the infrastructure's
(retry, or look at the nodes). Workers report fatal failures through the progress channel as a
``(reason, message)`` pair; the driver rebuilds the typed error with ``failure_from_report``.
"""

from __future__ import annotations

from shipyard.errors import Internal

__all__ = ["INFRA_REASONS", "USER_REASONS", "TrainingFailed", "failure_from_report"]

# The spec is at fault: retrying the same job gives the same failure.
USER_REASONS = frozenset({"NaNLoss", "InvalidModel", "InvalidData", "InvalidSpec", "OutOfMemory"})
# The platform is at fault: the same job may succeed on a retry.
INFRA_REASONS = frozenset({"WorkerCrashed", "BackoffLimitExceeded", "InvalidCheckpoint", "StorageError"})


class TrainingFailed(Internal):
    """The job ended FAILED. ``reason`` is one of ``USER_REASONS``/``INFRA_REASONS``.

    OutOfMemory counts as a user error: the model/batch does not fit the requested resources, and the
    fix (smaller micro batch, more workers, ZeRO/FSDP) is in the spec.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.user_error = reason in USER_REASONS
        super().__init__(f"{reason}: {message}")


def failure_from_report(reason: str, message: str) -> TrainingFailed:
    """The typed error for a failure a worker reported as plain strings (what crosses Ray)."""
    return TrainingFailed(reason, message)
