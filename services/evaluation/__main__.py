"""Run the evaluation service: ``python -m shipyard_services.evaluation [--port N]`` (``shipyard up``).

Jobs run one at a time (each loads its model), in this process or on the executor that
``evaluation.executor``/``evaluation.workers`` name; benchmark files are read from ``evaluation.data_root``
(default ``<storage root>/datasets/eval``). Finished samples are cached under the storage root, so a job
interrupted by a shutdown continues where it stopped.
"""

from __future__ import annotations

import sys

from shipyard.api.v1 import evaluation_pb2, evaluation_pb2_grpc
from shipyard.config import ShipyardConfig
from shipyard.evaluation.jobs import evaluation_job_manager
from shipyard.rpc.service_main import ServiceParts, service_main
from shipyard.telemetry.bootstrap import Telemetry
from shipyard_services.evaluation.servicer import EvaluationServicer

SERVICE_NAME = evaluation_pb2.DESCRIPTOR.services_by_name["EvaluationService"].full_name


def build(config: ShipyardConfig, telemetry: Telemetry) -> ServiceParts:
    manager = evaluation_job_manager(
        config.storage.root,
        config.storage,
        data_root=config.evaluation.data_root,
        executor=config.evaluation.executor,
        workers=config.evaluation.workers,
        meter=telemetry.metrics.meter_provider.get_meter("shipyard.evaluation"),
    )
    return ServiceParts(
        [(evaluation_pb2_grpc.add_EvaluationServiceServicer_to_server, EvaluationServicer(manager))],
        [SERVICE_NAME],
        on_stop=manager.close,
    )


if __name__ == "__main__":
    sys.exit(service_main("evaluation", build, sys.argv[1:]))
