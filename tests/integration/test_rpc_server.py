"""The shared gRPC server over real loopback connections: error mapping, health, reflection, auth, TLS."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase

from shipyard import errors
from shipyard.errors import FieldViolation
from shipyard.rpc import (
    ServerOptions,
    build_server,
    from_rpc_error,
    wait_ready,
)
from tests.integration.rpc_harness import SERVICE, WAIT, ServeFn, call, health, rpc_error

# A hang (a deadlock in shutdown, a call without deadline) fails fast instead of stalling the suite.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


# --- errors -------------------------------------------------------------------------------------------


def test_typed_errors_reach_the_client_with_code_and_field_violations(serve: ServeFn, channels) -> None:
    channel = channels(serve().address)

    err = rpc_error(lambda: call(channel, "Invalid"))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    recovered = from_rpc_error(err)
    assert isinstance(recovered, errors.InvalidArgument)
    assert recovered.message == "invalid request"
    assert recovered.violations == (
        FieldViolation("spec.name", "must not be empty"),
        FieldViolation("spec.shards", "< 1"),
    )

    err = rpc_error(lambda: call(channel, "Missing"))
    assert err.code() is grpc.StatusCode.NOT_FOUND
    assert isinstance(from_rpc_error(err), errors.NotFound)
    assert err.details() == "dataset 'web' not found"


def test_unexpected_exception_is_internal_without_leaking_the_message(
    serve: ServeFn, channels, caplog: pytest.LogCaptureFixture
) -> None:
    channel = channels(serve().address)
    err = rpc_error(lambda: call(channel, "Crash"))

    assert err.code() is grpc.StatusCode.INTERNAL
    assert err.details().startswith("internal error")
    assert "hunter2" not in err.details() and "RuntimeError" not in err.details()
    logged = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], RuntimeError)]
    assert logged and f"{SERVICE}/Crash" in logged[0].getMessage()


def test_error_in_the_middle_of_a_stream_keeps_sent_items_and_maps_the_code(serve: ServeFn, channels) -> None:
    channel = channels(serve().address)
    received: list[bytes] = []
    err = rpc_error(lambda: received.extend(channel.unary_stream(f"/{SERVICE}/Count")(b"")))
    assert received == [b"1", b"2"]
    assert err.code() is grpc.StatusCode.NOT_FOUND
    assert from_rpc_error(err).message == "no third item"


def test_client_streaming_and_bidi_calls_get_auth_and_error_mapping(serve: ServeFn, channels) -> None:
    address = serve(auth_token="s3cret").address
    authed, anonymous = channels(address, auth_token="s3cret"), channels(address)
    collect = f"/{SERVICE}/Collect"
    chat = f"/{SERVICE}/Chat"

    assert authed.stream_unary(collect)(iter([b"a", b"b"])) == b"a+b"
    assert list(authed.stream_stream(chat)(iter([b"x", b"y"]))) == [b"X", b"Y"]
    err = rpc_error(lambda: list(authed.stream_stream(chat)(iter([b"ok", b"bad"]))))
    assert from_rpc_error(err).violations == (FieldViolation("message", "must not be 'bad'"),)
    unauthenticated = rpc_error(lambda: anonymous.stream_unary(collect)(iter([b"a"])))
    assert unauthenticated.code() is grpc.StatusCode.UNAUTHENTICATED


def test_unknown_method_is_unimplemented(serve: ServeFn, channels) -> None:
    channel = channels(serve().address)
    err = rpc_error(lambda: call(channel, "NoSuchMethod"))
    assert err.code() is grpc.StatusCode.UNIMPLEMENTED
    assert isinstance(from_rpc_error(err), errors.Internal)


# --- health, reflection, auth ---------------------------------------------------------------------------


def test_health_reports_every_service_serving_and_reflection_lists_them(serve: ServeFn, channels) -> None:
    channel = channels(serve().address)
    wait_ready(channel, WAIT)
    assert health(channel) == health_pb2.HealthCheckResponse.SERVING
    assert health(channel, SERVICE) == health_pb2.HealthCheckResponse.SERVING
    assert rpc_error(lambda: health(channel, "no.Such")).code() is grpc.StatusCode.NOT_FOUND
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert SERVICE in services and "grpc.health.v1.Health" in services


def test_health_watchers_do_not_hold_handler_threads(serve: ServeFn, channels) -> None:
    channel = channels(serve(max_workers=2).address)
    stub = health_pb2_grpc.HealthStub(channel)
    watches = [stub.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=WAIT) for _ in range(4)]
    try:
        assert all(next(w).status == health_pb2.HealthCheckResponse.SERVING for w in watches)
        assert call(channel, "Echo", b"still served", timeout=WAIT) == b"still served"
    finally:
        for watch in watches:
            watch.cancel()


def test_bearer_token_is_required_except_for_health_and_reflection(serve: ServeFn, channels) -> None:
    address = serve(auth_token="s3cret").address

    anonymous = channels(address)
    err = rpc_error(lambda: call(anonymous, "Echo"))
    assert err.code() is grpc.StatusCode.UNAUTHENTICATED
    assert isinstance(from_rpc_error(err), errors.Unauthenticated)
    assert health(anonymous, SERVICE) == health_pb2.HealthCheckResponse.SERVING
    assert SERVICE in ProtoReflectionDescriptorDatabase(anonymous).get_services()

    wrong = channels(address, auth_token="s3cre")
    assert rpc_error(lambda: call(wrong, "Echo")).code() is grpc.StatusCode.UNAUTHENTICATED
    not_bearer = rpc_error(lambda: call(anonymous, "Echo", metadata=[("authorization", "Basic s3cret")]))
    assert not_bearer.code() is grpc.StatusCode.UNAUTHENTICATED

    assert call(channels(address, auth_token="s3cret"), "Echo", b"payload") == b"payload"


# --- TLS ----------------------------------------------------------------------------------------------


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


def test_tls_server_accepts_clients_trusting_its_certificate_only(serve: ServeFn, channels, tmp_path) -> None:
    cert_file, key_file = _self_signed(tmp_path)
    server = serve(tls_cert_file=cert_file, tls_key_file=key_file)

    trusting = channels(server.address, tls_root_cert_file=cert_file)
    assert call(trusting, "Echo", b"over tls") == b"over tls"
    by_name = channels(f"localhost:{server.port}", tls_root_cert_file=cert_file)
    assert call(by_name, "Echo", b"by name") == b"by name"

    plaintext = channels(server.address, retry_max_attempts=1, default_deadline_seconds=WAIT)
    assert rpc_error(lambda: call(plaintext, "Echo")).code() is grpc.StatusCode.UNAVAILABLE


def test_missing_tls_file_is_a_clear_error(tmp_path: Path) -> None:
    options = ServerOptions(tls_cert_file=tmp_path / "nope.crt", tls_key_file=tmp_path / "nope.key")
    with pytest.raises(errors.InvalidArgument) as info:
        build_server([], [SERVICE], options)
    assert info.value.violations[0].field == "tls_key_file"
    assert "nope.key" in info.value.violations[0].description
