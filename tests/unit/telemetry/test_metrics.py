"""Prometheus endpoint: serves the RPC instruments and a service's own, on a free loopback port."""

from __future__ import annotations

import socket
import urllib.error
import urllib.request

import pytest

from shipyard.errors import InvalidArgument, Unavailable
from shipyard.telemetry import PrometheusMetrics, RpcServerMetrics, TelemetryOptions

# Bypass any proxy from the environment: the endpoint is on loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _scrape(url: str) -> str:
    with _OPENER.open(url, timeout=5) as response:
        assert response.status == 200
        return response.read().decode()


def test_metrics_endpoint_serves_rpc_and_service_instruments() -> None:
    metrics = PrometheusMetrics("ingest")
    RpcServerMetrics(metrics.meter("shipyard.rpc")).record("shipyard.v1.Ingest", "Submit", 0, 12.5)
    metrics.meter("shipyard.ingest").create_counter("ingest.documents.processed").add(5, {"step": "dedup"})
    endpoint = metrics.serve("127.0.0.1", 0)
    try:
        assert endpoint.port > 0
        body = _scrape(endpoint.url)
    finally:
        metrics.shutdown()

    assert "rpc_server_requests_total{" in body
    assert 'rpc_method="Submit"' in body and 'rpc_grpc_status_code="0"' in body
    assert "rpc_server_duration_milliseconds_sum{" in body
    assert "ingest_documents_processed_total{" in body and 'step="dedup"' in body
    assert 'service_name="ingest"' in body


def test_stopped_endpoint_releases_its_port() -> None:
    metrics = PrometheusMetrics("svc")
    endpoint = metrics.serve("127.0.0.1", 0)
    metrics.shutdown()
    with pytest.raises(urllib.error.URLError):
        _scrape(endpoint.url)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", endpoint.port))  # free again


def test_two_providers_in_one_process_do_not_share_metrics() -> None:
    first, second = PrometheusMetrics("a"), PrometheusMetrics("b")
    first.meter("m").create_counter("only.in.first").add(1)
    assert b"only_in_first_total" in first.render()
    assert b"only_in_first_total" not in second.render()


def test_busy_port_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(Unavailable, match=f"127.0.0.1:{port}"):
            PrometheusMetrics("svc").serve("127.0.0.1", port)


def test_telemetry_options_reject_bad_port() -> None:
    with pytest.raises(InvalidArgument) as info:
        TelemetryOptions(metrics_port=70000)
    assert info.value.violations[0].field == "metrics_port"
