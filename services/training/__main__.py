"""Run the training service: ``python -m shipyard_services.training [--port N]`` (``shipyard up`` does this).

In embedded mode each job starts a local Ray; with ``training.ray_address`` jobs go to that cluster.
Jobs interrupted by a shutdown resume on the next start from their newest checkpoint.
"""

from __future__ import annotations

import sys

from shipyard.api.v1 import training_pb2, training_pb2_grpc
from shipyard.config import ShipyardConfig
from shipyard.rpc.service_main import ServiceParts, service_main
from shipyard.telemetry.bootstrap import Telemetry
from shipyard.training.jobs import training_job_manager
from shipyard_services.training.servicer import TrainingServicer

SERVICE_NAME = training_pb2.DESCRIPTOR.services_by_name["TrainingService"].full_name


def build(config: ShipyardConfig, telemetry: Telemetry) -> ServiceParts:
    manager = training_job_manager(
        config.storage.root,
        config.storage,
        ray_address=config.training.ray_address,
        max_concurrent_jobs=config.training.max_concurrent_jobs,
        meter=telemetry.metrics.meter_provider.get_meter("shipyard.training"),
    )
    return ServiceParts(
        [(training_pb2_grpc.add_TrainingServiceServicer_to_server, TrainingServicer(manager))],
        [SERVICE_NAME],
        on_stop=manager.close,
    )


if __name__ == "__main__":
    sys.exit(service_main("training", build, sys.argv[1:]))
