"""The ``__main__`` every service shares: flags, config, telemetry, server, graceful shutdown.

A service supplies only what is its own (``build`` returns its servicers and what to close on stop), so
every service starts, reports readiness and stops the same way — in a pod or under ``shipyard up``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.config import ShipyardConfig, load_config
from shipyard.errors import ShipyardError
from shipyard.rpc.from_config import server_options, telemetry_options
from shipyard.rpc.server import build_server
from shipyard.telemetry.bootstrap import Telemetry, setup_telemetry


@dataclass
class ServiceParts:
    servicers: Sequence[tuple[Callable[[Any, Any], None], Any]]
    service_names: Sequence[str]
    on_stop: Callable[[], None] = field(default=lambda: None)


def service_main(
    service: str, build: Callable[[ShipyardConfig, Telemetry], ServiceParts], argv: list[str] | None
) -> int:
    """Run ``service`` until SIGTERM/SIGINT. Prints one ``READY <service> grpc=... metrics=...`` line."""
    parser = argparse.ArgumentParser(prog=f"python -m shipyard_services.{service}")
    parser.add_argument("--config", help="YAML config file (default: $SHIPYARD_CONFIG)")
    parser.add_argument("--port", type=int, help=f"gRPC port (overrides grpc.ports.{service}; 0 = free port)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus port (0 = disabled)")
    parser.add_argument("--data-dir", help="local data directory (overrides storage.data_dir)")
    args = parser.parse_args(argv)
    overrides: dict[str, Any] = {}
    if args.port is not None:
        overrides[f"grpc.ports.{service}"] = args.port
    if args.metrics_port is not None:
        overrides["telemetry.metrics_port"] = args.metrics_port
    if args.data_dir is not None:
        overrides["storage.data_dir"] = args.data_dir
        overrides["storage.root"] = ""
    try:
        config = load_config(args.config, overrides)
    except ShipyardError as exc:
        print(f"shipyard {service}: {exc}", file=sys.stderr)
        return 2

    telemetry = setup_telemetry(telemetry_options(config, service))
    parts = build(config, telemetry)
    server = build_server(
        parts.servicers,
        parts.service_names,
        server_options(config, service),
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.metrics.meter_provider,
    )
    # One machine-readable line so supervisors (``shipyard up``, tests) learn the bound ports.
    metrics_url = telemetry.endpoint.url if telemetry.endpoint else ""
    print(f"READY {service} grpc={server.address} metrics={metrics_url}", flush=True)
    logging.getLogger(f"shipyard.{service}").info(
        "service listening", extra={"address": server.address, "root": config.storage.root}
    )
    try:
        server.serve_forever()  # returns after SIGTERM/SIGINT once in-flight calls finished
    finally:
        parts.on_stop()
        telemetry.shutdown()
    return 0
