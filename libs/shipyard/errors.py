"""Typed domain errors, raised by cores and mapped once to gRPC status codes at the edge.

Cores raise these instead of returning error values or raising bare exceptions, so a servicer, the CLI
and the operator all report the same thing in the same words. The mapping to wire codes lives in
``shipyard.rpc.errors`` (gRPC) and the CLI's error handler; nothing here imports grpc.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass


class Code(enum.Enum):
    """Canonical error codes (the google.rpc.Code names the gRPC mapping uses)."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    CANCELLED = "CANCELLED"
    DEADLINE_EXCEEDED = "DEADLINE_EXCEEDED"
    UNAVAILABLE = "UNAVAILABLE"
    INTERNAL = "INTERNAL"


@dataclass(frozen=True)
class FieldViolation:
    """One bad field: a dotted path into the request/spec (``spec.steps[2].bands``) and why."""

    field: str
    description: str

    def __str__(self) -> str:
        return f"{self.field}: {self.description}"


class ShipyardError(Exception):
    """Base of all domain errors. ``code`` decides the wire status; ``message`` is shown to users."""

    code: Code = Code.INTERNAL

    def __init__(self, message: str, *, violations: Iterable[FieldViolation] = ()) -> None:
        self.message = message
        self.violations: tuple[FieldViolation, ...] = tuple(violations)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        if not self.violations:
            return self.message
        details = "; ".join(str(v) for v in self.violations)
        return f"{self.message}: {details}"


class InvalidArgument(ShipyardError):
    """The caller sent something malformed; ``violations`` names each bad field and the reason."""

    code = Code.INVALID_ARGUMENT

    @classmethod
    def field(cls, field: str, description: str) -> InvalidArgument:
        """Shorthand for a single bad field."""
        return cls(f"invalid {field}", violations=[FieldViolation(field, description)])


class NotFound(ShipyardError):
    """A named resource or URI does not exist."""

    code = Code.NOT_FOUND


class AlreadyExists(ShipyardError):
    """A resource with this name already exists."""

    code = Code.ALREADY_EXISTS


class FailedPrecondition(ShipyardError):
    """The request is valid but the system is not in a state to carry it out (e.g. job already done)."""

    code = Code.FAILED_PRECONDITION


class ResourceExhausted(ShipyardError):
    """A quota or bounded queue is full; the caller may retry later."""

    code = Code.RESOURCE_EXHAUSTED


class PermissionDenied(ShipyardError):
    """The caller is known but not allowed to do this."""

    code = Code.PERMISSION_DENIED


class Unauthenticated(ShipyardError):
    """The caller did not present valid credentials."""

    code = Code.UNAUTHENTICATED


class Cancelled(ShipyardError):
    """The work was cancelled by a user before it finished."""

    code = Code.CANCELLED


class DeadlineExceeded(ShipyardError):
    """The work did not finish within its deadline."""

    code = Code.DEADLINE_EXCEEDED


class Unavailable(ShipyardError):
    """A dependency (storage, another service) is temporarily unreachable; retrying may succeed."""

    code = Code.UNAVAILABLE


class Internal(ShipyardError):
    """A bug or an invariant broken inside Shipyard."""

    code = Code.INTERNAL


def from_pydantic(exc: object, *, prefix: str = "") -> InvalidArgument:
    """Turn a ``pydantic.ValidationError`` into an ``InvalidArgument`` with one violation per field.

    Field paths use dots and ``[i]`` for list indices, rooted at ``prefix`` (e.g. ``spec``).
    """
    violations = []
    for err in exc.errors():  # type: ignore[attr-defined]
        parts: list[str] = [prefix] if prefix else []
        for loc in err.get("loc", ()):
            if isinstance(loc, int):
                if parts:
                    parts[-1] = f"{parts[-1]}[{loc}]"
                else:
                    parts.append(f"[{loc}]")
            else:
                parts.append(str(loc))
        violations.append(FieldViolation(".".join(parts) or "<root>", err.get("msg", "invalid value")))
    return InvalidArgument("invalid request", violations=violations)
