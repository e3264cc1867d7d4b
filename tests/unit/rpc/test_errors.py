"""The error mapping: every domain code has a wire status and BadRequest details carry the fields."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2

from shipyard import errors
from shipyard.errors import Code, FieldViolation
from shipyard.rpc.errors import GRPC_CODES, from_rpc_error, to_status


def test_every_domain_code_maps_to_the_grpc_code_of_the_same_name() -> None:
    assert set(GRPC_CODES) == set(Code)
    for code, status in GRPC_CODES.items():
        assert status.name == code.name


def _trailing_status(status: grpc.Status) -> status_pb2.Status:
    ((key, value),) = status.trailing_metadata
    assert key == "grpc-status-details-bin"
    return status_pb2.Status.FromString(value)


def test_status_carries_one_field_violation_per_bad_field() -> None:
    err = errors.InvalidArgument(
        "invalid request",
        violations=[
            FieldViolation("spec.name", "must not be empty"),
            FieldViolation("spec.steps[2]", "unknown"),
        ],
    )
    status = to_status(err)

    assert status.code is grpc.StatusCode.INVALID_ARGUMENT
    assert status.details == "invalid request: spec.name: must not be empty; spec.steps[2]: unknown"
    (detail,) = _trailing_status(status).details
    bad_request = error_details_pb2.BadRequest()
    assert detail.Unpack(bad_request)
    assert [(v.field, v.description) for v in bad_request.field_violations] == [
        ("spec.name", "must not be empty"),
        ("spec.steps[2]", "unknown"),
    ]


def test_status_without_violations_has_no_details() -> None:
    status = to_status(errors.NotFound("dataset 'web' not found"))
    assert status.code is grpc.StatusCode.NOT_FOUND
    assert status.details == "dataset 'web' not found"
    assert list(_trailing_status(status).details) == []


class _FailedCall(grpc.RpcError, grpc.Call):
    """What a client holds after a failed call: a code, details and trailing metadata (no server needed)."""

    def __init__(self, code: grpc.StatusCode, details: str, trailing_metadata: tuple = ()) -> None:
        self._code, self._details, self._trailing = code, details, trailing_metadata

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailing

    def initial_metadata(self) -> tuple:
        return ()

    def is_active(self) -> bool:
        return False

    def time_remaining(self) -> None:
        return None

    def cancel(self) -> bool:
        return False

    def add_callback(self, callback: object) -> bool:
        return False


@pytest.mark.parametrize(
    "err",
    [
        errors.InvalidArgument.field("spec.shards", "must be positive"),
        errors.NotFound("job 'j1' not found"),
        errors.FailedPrecondition("job already finished"),
        errors.Unavailable("storage unreachable"),
    ],
)
def test_round_trip_recovers_class_message_and_violations(err: errors.ShipyardError) -> None:
    status = to_status(err)
    back = from_rpc_error(_FailedCall(status.code, status.details, status.trailing_metadata))
    assert type(back) is type(err)
    assert back.message == err.message
    assert back.violations == err.violations
    assert str(back) == str(err)


def test_codes_shipyard_never_sends_become_internal_naming_the_code() -> None:
    back = from_rpc_error(_FailedCall(grpc.StatusCode.UNIMPLEMENTED, "Method not found!"))
    assert isinstance(back, errors.Internal)
    assert back.message == "UNIMPLEMENTED: Method not found!"
