"""The shared gRPC server and client over loopback: graceful shutdown, retries, deadlines, telemetry."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import threading
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shipyard import errors
from shipyard.rpc import (
    ServerOptions,
    ServerState,
    build_server,
    from_rpc_error,
    wait_ready,
)
from shipyard.telemetry import PrometheusMetrics, configure_logging, create_tracer_provider
from tests.integration.rpc_harness import FAST_RETRY, SERVICE, WAIT, Probe, ServeFn, call, health, rpc_error

# A hang (a deadlock in shutdown, a call without deadline) fails fast instead of stalling the suite.
pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]


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
    refused = rpc_error(lambda: call(no_retry, "Echo"))
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
    assert call(channel, "Flaky") == b"ok"
    assert probe.flaky_calls == 3


def test_without_retries_the_first_unavailable_is_seen(serve: ServeFn, probe: Probe, channels) -> None:
    channel = channels(serve().address, retry_max_attempts=1)
    err = rpc_error(lambda: call(channel, "Flaky"))
    assert err.code() is grpc.StatusCode.UNAVAILABLE
    assert from_rpc_error(err).message == "warming up"
    assert probe.flaky_calls == 1


def test_default_deadline_applies_when_the_caller_sets_none(serve: ServeFn, probe: Probe, channels) -> None:
    channel = channels(serve().address, default_deadline_seconds=0.3)
    err = rpc_error(lambda: call(channel, "Block"))
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
        call(channel, "Echo")
    crash_error = rpc_error(lambda: call(channel, "Crash"))
    health(channel)

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
        call(channel, "Echo")
        call(channel, "Echo")
        rpc_error(lambda: call(channel, "Missing"))
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
        call(channel, "Echo", b"12345")
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)

    (span,) = exporter.get_finished_spans()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    (echoed,) = [line for line in lines if line["message"] == "echoing"]
    assert echoed["trace_id"] == trace.format_trace_id(span.context.trace_id)
    assert echoed["span_id"] == trace.format_span_id(span.context.span_id)
    assert echoed["service"] == "probe" and echoed["size"] == 5
