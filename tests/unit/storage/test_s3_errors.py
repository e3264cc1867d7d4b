"""How S3 failures reach users: each botocore error becomes the typed error a caller can act on."""

from __future__ import annotations

import botocore.exceptions
import pytest

from shipyard.errors import Internal, NotFound, PermissionDenied, ShipyardError, Unauthenticated, Unavailable
from shipyard.storage.s3 import _translated


def _client_error(code: str, status: int) -> botocore.exceptions.ClientError:
    response = {"Error": {"Code": code, "Message": "msg"}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return botocore.exceptions.ClientError(response, "GetObject")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (_client_error("NoSuchKey", 404), NotFound),
        (_client_error("404", 404), NotFound),
        (_client_error("InternalError", 500), Unavailable),
        (_client_error("SlowDown", 503), Unavailable),
        (_client_error("AccessDenied", 403), PermissionDenied),
        (_client_error("InvalidRequest", 400), Internal),
        (botocore.exceptions.NoCredentialsError(), Unauthenticated),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), Unavailable),
        (botocore.exceptions.ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), Unavailable),
    ],
)
def test_botocore_errors_become_typed_errors_naming_the_uri(
    error: Exception, expected: type[ShipyardError]
) -> None:
    with pytest.raises(expected, match="s3://bucket/key") as caught, _translated("s3://bucket/key"):
        raise error

    assert caught.value.__cause__ is error
