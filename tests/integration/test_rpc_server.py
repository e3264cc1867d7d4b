"""The shared gRPC server and client, exercised over real loopback connections.

No Shipyard proto is compiled yet, so the servers carry grpc's own health service plus a generic
``shipyard.test.v1.Probe`` service (raw bytes in and out) whose methods fail in each way a real
servicer can: typed errors, unexpected exceptions, transient unavailability, blocking.
"""

from __future__ import annotations

import datetime as dt
import io
import ipaddress
import json
import logging
import os
import signal
import threading
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shipyard import errors
from shipyard.errors import FieldViolation
from shipyard.rpc import (
    ClientOptions,
    ServerOptions,
    ServerState,
    ShipyardServer,
    build_server,
    connect,
    from_rpc_error,
    wait_ready,
)
from shipyard.telemetry import PrometheusMetrics, configure_logging, create_tracer_provider

# A hang (a deadlock in shutdown, a call without deadline) fails fast instead of stalling the suite.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

SERVICE = "shipyard.test.v1.Probe"
WAIT = 5.0  # upper bound for anything that should happen "now"; never reached when tests pass
FAST_RETRY = {"retry_initial_backoff_seconds": 0.01, "retry_max_backoff_seconds": 0.05}


class Probe:
    """Handlers for the generic test service; events let tests step through in-flight calls."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.flaky_calls = 0
        self.remaining_at_entry: float | None = None

    def echo(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        logging.getLogger("shipyard.test.probe").info("echoing", extra={"size": len(request)})
        return request

    def invalid(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        raise errors.InvalidArgument(
            "invalid request",
            violations=[
                FieldViolation("spec.name", "must not be empty"),
                FieldViolation("spec.shards", "< 1"),
            ],
        )

    def missing(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        raise errors.NotFound("dataset 'web' not found")

    def crash(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        raise RuntimeError("password=hunter2 leaked in a bug")

    def flaky(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.flaky_calls += 1
        if self.flaky_calls <= 2:
            raise errors.Unavailable("warming up")
        return b"ok"

    def block(self, request: bytes, context: grpc.ServicerContext) -> bytes:
        self.remaining_at_entry = context.time_remaining()
        self.entered.set()
        self.release.wait(WAIT)
        return b"released"

    def count(self, request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
        yield b"1"
        yield b"2"
        raise errors.NotFound("no third item")

    def collect(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
        return b"+".join(requests)

    def chat(self, requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
        for request in requests:
            if request == b"bad":
                raise errors.InvalidArgument.field("message", "must not be 'bad'")
            yield request.upper()

    def handler(self) -> grpc.GenericRpcHandler:
        unary = {
            "Echo": self.echo,
            "Invalid": self.invalid,
            "Missing": self.missing,
            "Crash": self.crash,
            "Flaky": self.flaky,
            "Block": self.block,
        }
        handlers = {name: grpc.unary_unary_rpc_method_handler(fn) for name, fn in unary.items()}
        handlers["Count"] = grpc.unary_stream_rpc_method_handler(self.count)
        handlers["Collect"] = grpc.stream_unary_rpc_method_handler(self.collect)
        handlers["Chat"] = grpc.stream_stream_rpc_method_handler(self.chat)
        return grpc.method_handlers_generic_handler(SERVICE, handlers)


@pytest.fixture
def probe() -> Iterator[Probe]:
    probe = Probe()
    yield probe
    probe.release.set()  # never leave a handler thread blocked


ServeFn = Callable[..., ShipyardServer]


@pytest.fixture
def serve(probe: Probe) -> Iterator[ServeFn]:
    """Start a server with the probe service; every server started is stopped at teardown."""
    started: list[ShipyardServer] = []

    def start(**kwargs: object) -> ShipyardServer:
        telemetry = {k: kwargs.pop(k) for k in ("tracer_provider", "meter_provider") if k in kwargs}
        options = ServerOptions(**{"host": "127.0.0.1", "port": 0, "shutdown_grace_seconds": 0, **kwargs})  # type: ignore[arg-type]
        server = build_server([], [SERVICE], options, generic_handlers=[probe.handler()], **telemetry)  # type: ignore[arg-type]
        started.append(server.start())
        return server

    yield start
    for server in started:
        server.stop(0)


@pytest.fixture
def channels() -> Iterator[Callable[..., grpc.Channel]]:
    opened: list[grpc.Channel] = []

    def open_channel(target: str, **kwargs: object) -> grpc.Channel:
        channel = connect(target, ClientOptions(**kwargs))  # type: ignore[arg-type]
        opened.append(channel)
        return channel

    yield open_channel
    for channel in opened:
        channel.close()


def _call(channel: grpc.Channel, method: str, request: bytes = b"hi", **kwargs: object) -> bytes:
    return channel.unary_unary(f"/{SERVICE}/{method}")(request, **kwargs)


def _health(channel: grpc.Channel, service: str = "") -> int:
    return health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service)).status


def _rpc_error(fn: Callable[[], object]) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn()
    return info.value  # type: ignore[return-value]


# --- errors -------------------------------------------------------------------------------------------


def test_typed_errors_reach_the_client_with_code_and_field_violations(serve: ServeFn, channels) -> None:
    channel = channels(serve().address)

    err = _rpc_error(lambda: _call(channel, "Invalid"))
    assert err.code() is grpc.StatusCode.INVALID_ARGUMENT
    recovered = from_rpc_error(err)
    assert isinstance(recovered, errors.InvalidArgument)
    assert recovered.message == "invalid request"
    assert recovered.violations == (
        FieldViolation("spec.name", "must not be empty"),
        FieldViolation("spec.shards", "< 1"),
    )

    err = _rpc_error(lambda: _call(channel, "Missing"))
    assert err.code() is grpc.StatusCode.NOT_FOUND
    assert isinstance(from_rpc_error(err), errors.NotFound)
    assert err.details() == "dataset 'web' not found"


def test_unexpected_exception_is_internal_without_leaking_the_message(
    serve: ServeFn, channels, caplog: pytest.LogCaptureFixture
) -> None:
    channel = channels(serve().address)
    err = _rpc_error(lambda: _call(channel, "Crash"))

    assert err.code() is grpc.StatusCode.INTERNAL
    assert err.details().startswith("internal error")
    assert "hunter2" not in err.details() and "RuntimeError" not in err.details()
    logged = [r for r in caplog.records if r.exc_info and isinstance(r.exc_info[1], RuntimeError)]
    assert logged and f"{SERVICE}/Crash" in logged[0].getMessage()


def test_error_in_the_middle_of_a_stream_keeps_sent_items_and_maps_the_code(serve: ServeFn, channels) -> None:
    channel = channels(serve().address)
    received: list[bytes] = []
    err = _rpc_error(lambda: received.extend(channel.unary_stream(f"/{SERVICE}/Count")(b"")))
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
    err = _rpc_error(lambda: list(authed.stream_stream(chat)(iter([b"ok", b"bad"]))))
    assert from_rpc_error(err).violations == (FieldViolation("message", "must not be 'bad'"),)
    unauthenticated = _rpc_error(lambda: anonymous.stream_unary(collect)(iter([b"a"])))
    assert unauthenticated.code() is grpc.StatusCode.UNAUTHENTICATED


def test_unknown_method_is_unimplemented(serve: ServeFn, channels) -> None:
    channel = channels(serve().address)
    err = _rpc_error(lambda: _call(channel, "NoSuchMethod"))
    assert err.code() is grpc.StatusCode.UNIMPLEMENTED
    assert isinstance(from_rpc_error(err), errors.Internal)


# --- health, reflection, auth ---------------------------------------------------------------------------


def test_health_reports_every_service_serving_and_reflection_lists_them(serve: ServeFn, channels) -> None:
    channel = channels(serve().address)
    wait_ready(channel, WAIT)
    assert _health(channel) == health_pb2.HealthCheckResponse.SERVING
    assert _health(channel, SERVICE) == health_pb2.HealthCheckResponse.SERVING
    assert _rpc_error(lambda: _health(channel, "no.Such")).code() is grpc.StatusCode.NOT_FOUND
    services = ProtoReflectionDescriptorDatabase(channel).get_services()
    assert SERVICE in services and "grpc.health.v1.Health" in services


def test_health_watchers_do_not_hold_handler_threads(serve: ServeFn, channels) -> None:
    channel = channels(serve(max_workers=2).address)
    stub = health_pb2_grpc.HealthStub(channel)
    watches = [stub.Watch(health_pb2.HealthCheckRequest(service=SERVICE), timeout=WAIT) for _ in range(4)]
    try:
        assert all(next(w).status == health_pb2.HealthCheckResponse.SERVING for w in watches)
        assert _call(channel, "Echo", b"still served", timeout=WAIT) == b"still served"
    finally:
        for watch in watches:
            watch.cancel()


def test_bearer_token_is_required_except_for_health_and_reflection(serve: ServeFn, channels) -> None:
    address = serve(auth_token="s3cret").address

    anonymous = channels(address)
    err = _rpc_error(lambda: _call(anonymous, "Echo"))
    assert err.code() is grpc.StatusCode.UNAUTHENTICATED
    assert isinstance(from_rpc_error(err), errors.Unauthenticated)
    assert _health(anonymous, SERVICE) == health_pb2.HealthCheckResponse.SERVING
    assert SERVICE in ProtoReflectionDescriptorDatabase(anonymous).get_services()

    wrong = channels(address, auth_token="s3cre")
    assert _rpc_error(lambda: _call(wrong, "Echo")).code() is grpc.StatusCode.UNAUTHENTICATED
    not_bearer = _rpc_error(lambda: _call(anonymous, "Echo", metadata=[("authorization", "Basic s3cret")]))
    assert not_bearer.code() is grpc.StatusCode.UNAUTHENTICATED

    assert _call(channels(address, auth_token="s3cret"), "Echo", b"payload") == b"payload"


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
    assert _call(trusting, "Echo", b"over tls") == b"over tls"
    by_name = channels(f"localhost:{server.port}", tls_root_cert_file=cert_file)
    assert _call(by_name, "Echo", b"by name") == b"by name"

    plaintext = channels(server.address, retry_max_attempts=1, default_deadline_seconds=WAIT)
    assert _rpc_error(lambda: _call(plaintext, "Echo")).code() is grpc.StatusCode.UNAVAILABLE


def test_missing_tls_file_is_a_clear_error(tmp_path: Path) -> None:
    options = ServerOptions(tls_cert_file=tmp_path / "nope.crt", tls_key_file=tmp_path / "nope.key")
    with pytest.raises(errors.InvalidArgument) as info:
        build_server([], [SERVICE], options)
    assert info.value.violations[0].field == "tls_key_file"
    assert "nope.key" in info.value.violations[0].description


# --- lifecycle ----------------------------------------------------------------------------------------


def test_graceful_stop_reports_not_serving_and_lets_in_flight_calls_finish(
    serve: ServeFn, probe: Probe, channels
) -> None:
    server = serve(shutdown_grace_seconds=WAIT)
    channel = channels(server.address)
    watch = health_pb2_grpc.HealthStub(channel).Watch(
        health_pb2.HealthCheckRequest(service=SERVICE), timeout=WAIT
    )
    assert next(watch).status == health_pb2.HealthCheckResponse.SERVING

    in_flight_future = channel.unary_unary(f"/{SERVICE}/Block").future(b"work")
    assert probe.entered.wait(WAIT)
    stopper = threading.Thread(target=server.stop)
    stopper.start()

    assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    assert server.state is ServerState.STOPPING
    watch.cancel()
    probe.release.set()
    assert in_flight_future.result(timeout=WAIT) == b"released"
    stopper.join(WAIT)
    assert not stopper.is_alive()
    assert server.state is ServerState.STOPPED
    assert server.wait_for_termination(timeout=0)
    no_retry = channels(server.address, retry_max_attempts=1)
    refused = _rpc_error(lambda: _call(no_retry, "Echo"))
    assert refused.code() is grpc.StatusCode.UNAVAILABLE


def test_sigterm_stops_the_server(serve: ServeFn) -> None:
    server = serve()
    before = signal.getsignal(signal.SIGTERM)
    restore = server.install_signal_handlers()
    try:
        assert not server.wait_for_termination(timeout=0)
        os.kill(os.getpid(), signal.SIGTERM)
        assert server.wait_for_termination(timeout=WAIT)
    finally:
        restore()
    assert signal.getsignal(signal.SIGTERM) is before
    assert server.state is ServerState.STOPPED


def test_port_in_use_is_a_clear_error(serve: ServeFn) -> None:
    taken = serve().port
    with pytest.raises(errors.Unavailable, match=f"127.0.0.1:{taken}"):
        build_server([], [SERVICE], ServerOptions(port=taken))


# --- client behaviour ---------------------------------------------------------------------------------


def test_client_retries_unavailable_until_success(serve: ServeFn, probe: Probe, channels) -> None:
    channel = channels(serve().address, retry_max_attempts=3, **FAST_RETRY)
    assert _call(channel, "Flaky") == b"ok"
    assert probe.flaky_calls == 3


def test_without_retries_the_first_unavailable_is_seen(serve: ServeFn, probe: Probe, channels) -> None:
    channel = channels(serve().address, retry_max_attempts=1)
    err = _rpc_error(lambda: _call(channel, "Flaky"))
    assert err.code() is grpc.StatusCode.UNAVAILABLE
    assert from_rpc_error(err).message == "warming up"
    assert probe.flaky_calls == 1


def test_default_deadline_applies_when_the_caller_sets_none(serve: ServeFn, probe: Probe, channels) -> None:
    channel = channels(serve().address, default_deadline_seconds=0.3)
    err = _rpc_error(lambda: _call(channel, "Block"))
    assert err.code() is grpc.StatusCode.DEADLINE_EXCEEDED
    # The server sees the deadline too (about 0.3 s left, not the 30 s default nor none at all).
    assert probe.remaining_at_entry is not None and 0 < probe.remaining_at_entry < 1


def test_wait_ready_times_out_on_a_dead_target(channels) -> None:
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(errors.Unavailable, match="not ready"):
        wait_ready(channels(f"127.0.0.1:{port}"), 0.2)


# --- telemetry ----------------------------------------------------------------------------------------


def test_each_rpc_records_a_server_span_continuing_the_callers_trace(serve: ServeFn, channels) -> None:
    exporter = InMemorySpanExporter()
    provider = create_tracer_provider("probe", exporter=exporter, synchronous=True)
    channel = channels(serve(tracer_provider=provider).address)
    client_tracer = create_tracer_provider("caller").get_tracer("test")

    with client_tracer.start_as_current_span("caller") as caller:
        _call(channel, "Echo")
    crash_error = _rpc_error(lambda: _call(channel, "Crash"))
    _health(channel)

    echo, crash = exporter.get_finished_spans()  # health checks are not traced
    assert echo.name == f"{SERVICE}/Echo"
    assert echo.kind is trace.SpanKind.SERVER
    assert echo.attributes["rpc.service"] == SERVICE and echo.attributes["rpc.method"] == "Echo"
    assert echo.attributes["rpc.grpc.status_code"] == 0
    assert echo.context.trace_id == caller.get_span_context().trace_id
    assert echo.parent is not None and echo.parent.span_id == caller.get_span_context().span_id
    assert crash.attributes["rpc.grpc.status_code"] == grpc.StatusCode.INTERNAL.value[0]
    assert crash.status.status_code is trace.StatusCode.ERROR
    # The user reporting the failure can quote the id that finds the logged traceback.
    crash_trace_id = trace.format_trace_id(crash.context.trace_id)
    assert crash_error.details() == f"internal error (trace_id={crash_trace_id})"
    assert echo.resource.attributes["service.name"] == "probe"


def test_metrics_endpoint_counts_rpcs_by_method_and_status(serve: ServeFn, channels) -> None:
    metrics = PrometheusMetrics("probe")
    endpoint = metrics.serve("127.0.0.1", 0)
    try:
        channel = channels(serve(meter_provider=metrics.meter_provider).address)
        _call(channel, "Echo")
        _call(channel, "Echo")
        _rpc_error(lambda: _call(channel, "Missing"))
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        body = opener.open(endpoint.url, timeout=WAIT).read().decode()
    finally:
        metrics.shutdown()

    requests = [line for line in body.splitlines() if line.startswith("rpc_server_requests_total{")]
    echo_ok = [
        line for line in requests if 'rpc_method="Echo"' in line and 'rpc_grpc_status_code="0"' in line
    ]
    missing = [
        line for line in requests if 'rpc_method="Missing"' in line and 'rpc_grpc_status_code="5"' in line
    ]
    assert len(echo_ok) == 1 and echo_ok[0].endswith(" 2.0")
    assert len(missing) == 1 and missing[0].endswith(" 1.0")
    assert "rpc_server_duration_milliseconds_count{" in body


def test_handler_logs_are_json_lines_with_the_rpc_trace_id(serve: ServeFn, channels) -> None:
    root = logging.getLogger()
    saved_handlers, saved_level = list(root.handlers), root.level
    stream = io.StringIO()
    exporter = InMemorySpanExporter()
    try:
        configure_logging("INFO", "json", "probe", stream=stream)
        channel = channels(
            serve(
                tracer_provider=create_tracer_provider("probe", exporter=exporter, synchronous=True)
            ).address
        )
        _call(channel, "Echo", b"12345")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)

    (span,) = exporter.get_finished_spans()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    (echoed,) = [line for line in lines if line["message"] == "echoing"]
    assert echoed["trace_id"] == trace.format_trace_id(span.context.trace_id)
    assert echoed["span_id"] == trace.format_span_id(span.context.span_id)
    assert echoed["service"] == "probe" and echoed["size"] == 5
