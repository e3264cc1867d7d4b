"""One call that wires a service's logging, tracing and metrics from ``TelemetryOptions``.

``TelemetryOptions`` mirrors the ``telemetry`` section of ``ShipyardConfig`` field for field, so the
config maps onto it at the edge and this package never imports the config.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from opentelemetry import metrics as otel_metrics
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from shipyard.errors import InvalidArgument
from shipyard.telemetry.logging import LogFormat, configure_logging
from shipyard.telemetry.metrics import MetricsEndpoint, PrometheusMetrics
from shipyard.telemetry.tracing import create_tracer_provider, install_tracer_provider

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TelemetryOptions:
    """How a service reports on itself."""

    service_name: str = "shipyard"
    log_level: str = "INFO"
    log_format: LogFormat = "json"
    # Port for the Prometheus /metrics endpoint; None serves none, 0 picks a free port.
    metrics_port: int | None = 9464
    # Prometheus scrapes from outside the pod, hence all interfaces by default.
    metrics_host: str = "0.0.0.0"

    def __post_init__(self) -> None:
        if not self.service_name:
            raise InvalidArgument.field("service_name", "must not be empty")
        if self.metrics_port is not None and not 0 <= self.metrics_port <= 65535:
            raise InvalidArgument.field("metrics_port", f"{self.metrics_port} is not a port (0-65535)")


@dataclass
class Telemetry:
    """What ``setup_telemetry`` built; pass the providers to ``build_server`` and call ``shutdown`` last."""

    tracer_provider: TracerProvider
    metrics: PrometheusMetrics
    endpoint: MetricsEndpoint | None

    def shutdown(self) -> None:
        """Flush pending spans and stop the metrics endpoint."""
        self.tracer_provider.shutdown()
        self.metrics.shutdown()


def setup_telemetry(
    options: TelemetryOptions,
    *,
    span_exporter: SpanExporter | None = None,
    install_globals: bool = True,
) -> Telemetry:
    """Configure logging, build the tracer and meter providers and start ``/metrics`` if asked.

    ``install_globals`` makes the providers the OTel API defaults (what a ``__main__`` wants, so library
    code calling ``opentelemetry.trace.get_tracer`` is recorded too); tests leave it off.
    """
    configure_logging(options.log_level, options.log_format, options.service_name)
    tracer_provider = create_tracer_provider(options.service_name, exporter=span_exporter)
    prometheus = PrometheusMetrics(options.service_name)
    endpoint = None
    if options.metrics_port is not None:
        endpoint = prometheus.serve(options.metrics_host, options.metrics_port)
    if install_globals:
        install_tracer_provider(tracer_provider)
        otel_metrics.set_meter_provider(prometheus.meter_provider)
    return Telemetry(tracer_provider, prometheus, endpoint)
