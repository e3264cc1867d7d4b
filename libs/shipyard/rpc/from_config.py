"""Map the typed ``ShipyardConfig`` onto the rpc and telemetry option objects (the one place that does).

The rpc layer takes small option dataclasses so it can be tested without the config; every service's
``__main__`` calls these to build them from the one configuration.
"""

from __future__ import annotations

from shipyard.config import ShipyardConfig
from shipyard.rpc.client import ClientOptions
from shipyard.rpc.server import ServerOptions
from shipyard.telemetry.bootstrap import TelemetryOptions


def server_options(config: ShipyardConfig, service: str) -> ServerOptions:
    """Options for ``service`` (a field of ``grpc.ports``: ``ingest``, ``training``, ...)."""
    g = config.grpc
    return ServerOptions(
        host=g.host,
        port=getattr(g.ports, service),
        max_message_bytes=g.max_message_bytes,
        auth_token=g.auth_token.get_secret_value() if g.auth_token else None,
        tls_cert_file=g.tls_cert_file,
        tls_key_file=g.tls_key_file,
        shutdown_grace_seconds=g.shutdown_grace_seconds,
        max_workers=g.max_workers,
    )


def telemetry_options(config: ShipyardConfig, service: str) -> TelemetryOptions:
    t = config.telemetry
    return TelemetryOptions(
        service_name=f"{t.service_name}-{service}",
        log_level=t.log_level,
        log_format=t.log_format,
        metrics_port=t.metrics_port or None,
        metrics_host=config.grpc.host,
    )


def client_options(config: ShipyardConfig) -> ClientOptions:
    g = config.grpc
    return ClientOptions(
        default_deadline_seconds=g.default_deadline_seconds,
        max_message_bytes=g.max_message_bytes,
        auth_token=g.auth_token.get_secret_value() if g.auth_token else None,
        tls_root_cert_file=g.tls_cert_file,
    )


def target(config: ShipyardConfig, service: str) -> str:
    """``host:port`` where ``service`` listens according to the config."""
    host = config.grpc.host
    return f"{'[' + host + ']' if ':' in host else host}:{getattr(config.grpc.ports, service)}"
