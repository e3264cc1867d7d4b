"""Server and client options: bad values name the field; the retry policy reaches gRPC's service config."""

from __future__ import annotations

import json

import pytest

from shipyard.errors import InvalidArgument
from shipyard.rpc import ClientOptions, ServerOptions
from shipyard.rpc.client import channel_options


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"port": 70000}, "port"),
        ({"max_message_bytes": 0}, "max_message_bytes"),
        ({"shutdown_grace_seconds": -1}, "shutdown_grace_seconds"),
        ({"max_workers": 0}, "max_workers"),
        ({"tls_cert_file": "cert.pem"}, "tls_key_file"),
        ({"tls_key_file": "key.pem"}, "tls_cert_file"),
    ],
)
def test_bad_server_options_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        ServerOptions(**kwargs)
    assert info.value.violations[0].field == field


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"default_deadline_seconds": 0}, "default_deadline_seconds"),
        ({"retry_max_attempts": 6}, "retry_max_attempts"),
        ({"retryable_status_codes": ("UNAVAILABLE", "FLAKY")}, "retryable_status_codes"),
        ({"keepalive_time_seconds": 1}, "keepalive_time_seconds"),
    ],
)
def test_bad_client_options_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        ClientOptions(**kwargs)
    assert info.value.violations[0].field == field


def test_secrets_stay_out_of_reprs() -> None:
    assert "hunter2" not in repr(ServerOptions(auth_token="hunter2"))
    assert "hunter2" not in repr(ClientOptions(auth_token="hunter2"))


def test_retry_policy_is_in_the_channel_service_config() -> None:
    args = dict(channel_options(ClientOptions(retry_max_attempts=3, retry_initial_backoff_seconds=0.05)))
    (method_config,) = json.loads(args["grpc.service_config"])["methodConfig"]
    assert method_config["name"] == [{}]
    assert method_config["retryPolicy"] == {
        "maxAttempts": 3,
        "initialBackoff": "0.05s",
        "maxBackoff": "5.0s",
        "backoffMultiplier": 2.0,
        "retryableStatusCodes": ["UNAVAILABLE", "RESOURCE_EXHAUSTED"],
    }
    assert args["grpc.enable_retries"] == 1


def test_one_attempt_disables_retries() -> None:
    args = dict(channel_options(ClientOptions(retry_max_attempts=1)))
    assert args["grpc.enable_retries"] == 0
    assert json.loads(args["grpc.service_config"]) == {}
