"""Telemetry every Shipyard service shares: structured logs, OpenTelemetry traces, Prometheus metrics."""

from __future__ import annotations

from shipyard.telemetry.bootstrap import Telemetry, TelemetryOptions, setup_telemetry
from shipyard.telemetry.logging import configure_logging
from shipyard.telemetry.metrics import MetricsEndpoint, PrometheusMetrics, RpcServerMetrics
from shipyard.telemetry.tracing import (
    create_tracer_provider,
    current_trace_ids,
    install_tracer_provider,
    tracer,
)

__all__ = [
    "MetricsEndpoint",
    "PrometheusMetrics",
    "RpcServerMetrics",
    "Telemetry",
    "TelemetryOptions",
    "configure_logging",
    "create_tracer_provider",
    "current_trace_ids",
    "install_tracer_provider",
    "setup_telemetry",
    "tracer",
]
