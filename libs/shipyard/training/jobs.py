"""Training jobs as resources: the ``JobRunner`` that plugs ``run_training`` into ``JobManager``.

Validation (spec + feasibility) happens in ``validate``, before a job is recorded or any compute starts.
Resubmitting a job whose checkpoint URI holds checkpoints continues from the newest one.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

from opentelemetry.metrics import Meter

from shipyard.config import StorageConfig
from shipyard.jobs.manager import JobManager
from shipyard.jobs.metrics import JobMetrics
from shipyard.jobs.record import JobRecord
from shipyard.resources.meta import Metadata
from shipyard.storage.routing import RoutingStorage
from shipyard.training.feasibility import check_feasible
from shipyard.training.spec import TrainingJob, parse_training_spec
from shipyard.training.trainer import TrainingProgress, TrainingResult, run_training

TrainingJobRecord = JobRecord[TrainingResult, TrainingProgress]


class TrainingRunner:
    kind = "training"

    def __init__(
        self,
        storage: RoutingStorage,
        storage_root: str,
        storage_config: StorageConfig | None = None,
        *,
        ray_address: str | None = None,
    ) -> None:
        self._storage = storage
        self._root = storage_root
        self._storage_config = storage_config
        self._ray_address = ray_address

    def validate(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        parsed = parse_training_spec(spec)
        check_feasible(parsed, self._storage, embedded=self._ray_address is None, storage_root=self._root)
        return parsed.model_dump(mode="json")

    def suspended(self, spec: dict[str, Any]) -> bool:
        return bool(spec.get("run_policy", {}).get("suspend"))

    def run(
        self,
        name: str,
        spec: dict[str, Any],
        labels: dict[str, str],
        on_progress: Callable[[TrainingProgress], None],
        cancel: threading.Event,
    ) -> TrainingResult:
        job = TrainingJob(metadata=Metadata(name=name, labels=labels), spec=spec)
        return run_training(
            job,
            storage_root=self._root,
            storage_config=self._storage_config,
            on_progress=on_progress,
            cancel=cancel,
            ray_address=self._ray_address,
        )

    def progress_to_json(self, p: TrainingProgress) -> dict[str, Any]:
        return dataclasses.asdict(p)

    def progress_from_json(self, d: dict[str, Any]) -> TrainingProgress:
        return TrainingProgress(**d)

    def result_to_json(self, r: TrainingResult) -> dict[str, Any]:
        return dataclasses.asdict(r)

    def result_from_json(self, d: dict[str, Any]) -> TrainingResult:
        return TrainingResult(**d)


def training_job_manager(
    storage_root: str,
    storage_config: StorageConfig | None = None,
    *,
    ray_address: str | None = None,
    max_concurrent_jobs: int = 1,
    meter: Meter | None = None,
    recover: bool = True,
) -> JobManager[TrainingResult, TrainingProgress]:
    """The training service's job manager: records under ``<storage_root>/jobs/training/``.

    One job at a time by default: in embedded mode a job takes the machine's cores.
    """
    storage = RoutingStorage(storage_config)
    return JobManager(
        TrainingRunner(storage, storage_root, storage_config, ray_address=ray_address),
        storage,
        storage_root,
        max_concurrent_jobs=max_concurrent_jobs,
        metrics=JobMetrics(meter),
        recover=recover,
    )
