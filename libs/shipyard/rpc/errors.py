"""The one mapping between Shipyard's typed errors and gRPC statuses, in both directions.

Servers turn a ``ShipyardError`` into a ``grpc.Status`` whose rich details (``grpc-status-details-bin``)
carry a ``google.rpc.BadRequest`` with one ``FieldViolation`` per bad field; clients turn the
``grpc.RpcError`` back into the same ``ShipyardError`` subclass with its violations, so a CLI talking to
a remote service reports a bad field exactly as it would in-process.
"""

from __future__ import annotations

import grpc
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from shipyard import errors
from shipyard.errors import Code, FieldViolation, ShipyardError

GRPC_CODES: dict[Code, grpc.StatusCode] = {
    Code.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    Code.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    Code.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    Code.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    Code.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Code.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    Code.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    Code.CANCELLED: grpc.StatusCode.CANCELLED,
    Code.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    Code.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    Code.INTERNAL: grpc.StatusCode.INTERNAL,
}

_ERROR_CLASSES: dict[grpc.StatusCode, type[ShipyardError]] = {
    GRPC_CODES[cls.code]: cls
    for cls in (
        errors.InvalidArgument,
        errors.NotFound,
        errors.AlreadyExists,
        errors.FailedPrecondition,
        errors.ResourceExhausted,
        errors.PermissionDenied,
        errors.Unauthenticated,
        errors.Cancelled,
        errors.DeadlineExceeded,
        errors.Unavailable,
        errors.Internal,
    )
}


def grpc_code(code: Code) -> grpc.StatusCode:
    """The wire status for a domain code."""
    return GRPC_CODES[code]


def to_status(err: ShipyardError) -> grpc.Status:
    """The status a server aborts with: the mapped code, the readable message and the field violations.

    The message includes the violations too (``invalid request: spec.name: must not be empty``), so
    tools that ignore rich details (grpcurl, other languages' default handlers) still say which field.
    """
    status = status_pb2.Status(code=grpc_code(err.code).value[0], message=str(err))
    if err.violations:
        bad_request = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in err.violations
            ]
        )
        detail = any_pb2.Any()
        detail.Pack(bad_request)
        status.details.append(detail)
    return rpc_status.to_status(status)


def _violations(status: status_pb2.Status | None) -> list[FieldViolation]:
    found: list[FieldViolation] = []
    for detail in status.details if status is not None else ():
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad_request = error_details_pb2.BadRequest()
            detail.Unpack(bad_request)
            found += [FieldViolation(v.field, v.description) for v in bad_request.field_violations]
    return found


def from_rpc_error(error: grpc.RpcError) -> ShipyardError:
    """The ``ShipyardError`` a failed call stands for, with the server's field violations recovered.

    Codes Shipyard never sends itself (UNKNOWN, UNIMPLEMENTED, ...) become ``Internal`` with the code
    name in the message, since they mean a bug or a mismatched peer rather than a user mistake.
    """
    code = error.code() if isinstance(error, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = (error.details() if isinstance(error, grpc.Call) else None) or ""
    try:
        status = rpc_status.from_call(error) if isinstance(error, grpc.Call) else None
    except ValueError:  # details present but inconsistent with the call's status: ignore them
        status = None
    violations = _violations(status)
    message = details
    suffix = "; ".join(str(v) for v in violations)
    if violations and message.endswith(f": {suffix}"):
        # to_status() appended the violations to the message; keep them only in ``violations``.
        message = message[: -len(suffix) - 2]
    cls = _ERROR_CLASSES.get(code)
    if cls is None:
        return errors.Internal(f"{code.name}: {details}" if details else code.name, violations=violations)
    return cls(message or code.name.lower().replace("_", " "), violations=violations)
