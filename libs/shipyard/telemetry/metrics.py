"""Metrics: an OpenTelemetry ``MeterProvider`` exposed as a Prometheus ``/metrics`` endpoint.

Each ``PrometheusMetrics`` owns its own ``prometheus_client`` registry (not the module-global one), so
two providers in one process (tests, embedded mode) never collide on metric names. Services add their
own instruments with ``metrics.meter("shipyard.ingest").create_counter(...)``; the standard RPC server
instruments live in ``RpcServerMetrics``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from wsgiref.simple_server import WSGIServer

from opentelemetry import metrics
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader
from prometheus_client import CollectorRegistry, generate_latest, start_http_server

from shipyard.errors import Unavailable
from shipyard.telemetry.resource import service_resource

log = logging.getLogger(__name__)


@dataclass
class MetricsEndpoint:
    """A running Prometheus HTTP server; ``port`` is the bound port (useful when 0 was asked for)."""

    host: str
    port: int
    _server: WSGIServer = field(repr=False)
    _thread: threading.Thread = field(repr=False)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/metrics"

    def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


class PrometheusMetrics:
    """A ``MeterProvider`` whose instruments are rendered in Prometheus text format.

    ``extra_readers`` lets a deployment push the same instruments elsewhere (e.g. OTLP) as well.
    """

    def __init__(
        self,
        service_name: str,
        *,
        extra_readers: Sequence[MetricReader] = (),
        resource_attributes: Mapping[str, str] | None = None,
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._reader = PrometheusMetricReader(registry=self.registry)
        self.meter_provider = MeterProvider(
            metric_readers=[self._reader, *extra_readers],
            resource=service_resource(service_name, resource_attributes),
        )
        self._endpoint: MetricsEndpoint | None = None

    def meter(self, name: str) -> metrics.Meter:
        """A meter named after the instrumenting module (``shipyard.ingest``, ``shipyard.rpc``)."""
        return self.meter_provider.get_meter(name)

    def render(self) -> bytes:
        """The current metrics in Prometheus text exposition format (what ``/metrics`` serves)."""
        return generate_latest(self.registry)

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> MetricsEndpoint:
        """Serve ``/metrics`` over HTTP on ``host:port`` (port 0 picks a free one) in a daemon thread."""
        if self._endpoint is not None:
            return self._endpoint
        try:
            server, thread = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            raise Unavailable(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from exc
        self._endpoint = MetricsEndpoint(host, server.server_port, server, thread)
        log.info("serving metrics", extra={"metrics_url": self._endpoint.url})
        return self._endpoint

    def shutdown(self) -> None:
        """Stop the endpoint (if any) and the provider; instruments stop recording."""
        if self._endpoint is not None:
            self._endpoint.stop()
            self._endpoint = None
        self.meter_provider.shutdown()


class RpcServerMetrics:
    """The standard per-RPC server instruments (OpenTelemetry RPC semantic conventions).

    Exported to Prometheus as ``rpc_server_duration_milliseconds`` (histogram) and
    ``rpc_server_requests_total`` (counter), labelled by ``rpc_service``, ``rpc_method`` and
    ``rpc_grpc_status_code`` (the numeric gRPC code, as the conventions specify).
    """

    def __init__(self, meter: metrics.Meter) -> None:
        self.duration = meter.create_histogram(
            "rpc.server.duration", unit="ms", description="Time to handle one RPC, end to end."
        )
        self.requests = meter.create_counter(
            "rpc.server.requests", unit="{request}", description="RPCs handled, by method and status."
        )

    def record(self, service: str, method: str, status_code: int, duration_ms: float) -> None:
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
        attributes["rpc.grpc.status_code"] = status_code
        self.duration.record(duration_ms, attributes)
        self.requests.add(1, attributes)
