"""Run the ingest service: ``python -m shipyard_services.ingest [--port N]`` (``shipyard up`` does this).

Reads the one typed config, sets up telemetry, serves ``shipyard.v1.IngestService`` with health and
reflection, and shuts down gracefully on SIGTERM/SIGINT (running jobs are interrupted and resume on
the next start from their done-markers).
"""

from __future__ import annotations

import argparse
import logging
import sys

from shipyard.api.v1 import ingest_pb2, ingest_pb2_grpc
from shipyard.config import load_config
from shipyard.data.jobs import ingest_job_manager
from shipyard.errors import ShipyardError
from shipyard.rpc.from_config import server_options, telemetry_options
from shipyard.rpc.server import build_server
from shipyard.telemetry.bootstrap import setup_telemetry
from shipyard_services.ingest.servicer import IngestServicer

SERVICE_NAME = ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name
log = logging.getLogger("shipyard.ingest")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shipyard_services.ingest", description=__doc__)
    parser.add_argument("--config", help="YAML config file (default: $SHIPYARD_CONFIG)")
    parser.add_argument("--port", type=int, help="gRPC port (overrides grpc.ports.ingest; 0 = free port)")
    parser.add_argument("--metrics-port", type=int, help="Prometheus port (0 = disabled)")
    parser.add_argument("--data-dir", help="local data directory (overrides storage.data_dir)")
    args = parser.parse_args(argv)
    overrides = {}
    if args.port is not None:
        overrides["grpc.ports.ingest"] = args.port
    if args.metrics_port is not None:
        overrides["telemetry.metrics_port"] = args.metrics_port
    if args.data_dir is not None:
        overrides["storage.data_dir"] = args.data_dir
        overrides["storage.root"] = ""
    try:
        config = load_config(args.config, overrides)
    except ShipyardError as exc:
        print(f"shipyard ingest: {exc}", file=sys.stderr)
        return 2

    telemetry = setup_telemetry(telemetry_options(config, "ingest"))
    manager = ingest_job_manager(
        config.storage.root,
        config.storage,
        workers=config.ingest.workers,
        meter=telemetry.metrics.meter_provider.get_meter("shipyard.ingest"),
    )
    server = build_server(
        [(ingest_pb2_grpc.add_IngestServiceServicer_to_server, IngestServicer(manager))],
        [SERVICE_NAME],
        server_options(config, "ingest"),
        tracer_provider=telemetry.tracer_provider,
        meter_provider=telemetry.metrics.meter_provider,
    )
    # One machine-readable line so supervisors (``shipyard up``, tests) learn the bound ports.
    endpoint = telemetry.endpoint
    print(
        f"READY ingest grpc={server.address} metrics={endpoint.url if endpoint else ''}",
        flush=True,
    )
    log.info("ingest service listening", extra={"address": server.address, "root": config.storage.root})
    try:
        server.serve_forever()  # returns after SIGTERM/SIGINT once in-flight calls finished
    finally:
        manager.close()
        telemetry.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
