"""Run the ingest service: ``python -m shipyard_services.ingest [--port N]`` (``shipyard up`` does this).

Running jobs interrupted by a shutdown resume on the next start from their done-markers.
"""

from __future__ import annotations

import sys

from shipyard.api.v1 import ingest_pb2, ingest_pb2_grpc
from shipyard.config import ShipyardConfig
from shipyard.data.jobs import ingest_job_manager
from shipyard.rpc.service_main import ServiceParts, service_main
from shipyard.telemetry.bootstrap import Telemetry
from shipyard_services.ingest.servicer import IngestServicer

SERVICE_NAME = ingest_pb2.DESCRIPTOR.services_by_name["IngestService"].full_name


def build(config: ShipyardConfig, telemetry: Telemetry) -> ServiceParts:
    manager = ingest_job_manager(
        config.storage.root,
        config.storage,
        workers=config.ingest.workers,
        meter=telemetry.metrics.meter_provider.get_meter("shipyard.ingest"),
    )
    return ServiceParts(
        [(ingest_pb2_grpc.add_IngestServiceServicer_to_server, IngestServicer(manager))],
        [SERVICE_NAME],
        on_stop=manager.close,
    )


if __name__ == "__main__":
    sys.exit(service_main("ingest", build, sys.argv[1:]))
