"""Ingest jobs as resources: the ``JobRunner`` that plugs the ingest pipeline into ``JobManager``.

Validation checks the spec and that the input exists before anything runs; running delegates to
``run_ingest`` (resumable from its done-markers, so a restarted service continues where it stopped).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from opentelemetry.metrics import Meter

from shipyard.config import StorageConfig
from shipyard.data.executor.runner import IngestResult, ProgressUpdate, run_ingest
from shipyard.data.manifest import read_manifest
from shipyard.data.spec import IngestJob, parse_spec
from shipyard.data.step import StepStats
from shipyard.data.steps.readers import make_reader
from shipyard.errors import NotFound
from shipyard.jobs.manager import JobManager
from shipyard.jobs.metrics import JobMetrics
from shipyard.jobs.record import JobRecord
from shipyard.resources.meta import Metadata
from shipyard.storage.routing import RoutingStorage

IngestJobRecord = JobRecord[IngestResult, ProgressUpdate]


class IngestRunner:
    kind = "ingest"

    def __init__(
        self,
        storage: RoutingStorage,
        storage_config: StorageConfig | None,
        workers: int,
        meter: Meter | None = None,
    ) -> None:
        self._storage = storage
        self._storage_config = storage_config
        self._workers = workers
        self._docs = (
            meter.create_counter(
                "shipyard.ingest.documents_read", unit="{document}", description="Documents read."
            )
            if meter is not None
            else None
        )

    def validate(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        parsed = parse_spec(spec)
        if not make_reader(parsed.input).shards(self._storage):
            raise NotFound(f"spec.input.uri: no input files match {parsed.input.uri!r}")
        return parsed.model_dump(mode="json")

    def suspended(self, spec: dict[str, Any]) -> bool:
        return False

    def run(
        self,
        name: str,
        spec: dict[str, Any],
        labels: dict[str, str],
        on_progress: Callable[[ProgressUpdate], None],
        cancel: threading.Event,
    ) -> IngestResult:
        last = [0]

        def progress(p: ProgressUpdate) -> None:
            if self._docs is not None and p.documents_read > last[0]:
                self._docs.add(p.documents_read - last[0])
                last[0] = p.documents_read
            on_progress(p)

        job = IngestJob(metadata=Metadata(name=name, labels=labels), spec=spec)
        return run_ingest(
            job,
            storage_config=self._storage_config,
            workers=self._workers,
            on_progress=progress,
            cancel=cancel,
        )

    def progress_to_json(self, p: ProgressUpdate) -> dict[str, Any]:
        return {
            "stage": p.stage,
            "completed": p.completed,
            "total": p.total,
            "documentsRead": p.documents_read,
            "elapsed": p.elapsed,
        }

    def progress_from_json(self, d: dict[str, Any]) -> ProgressUpdate:
        return ProgressUpdate(d["stage"], d["completed"], d["total"], d["documentsRead"], d["elapsed"])

    def result_to_json(self, r: IngestResult) -> dict[str, Any]:
        return {
            "manifestUri": r.manifest_uri,
            "documentsRead": r.documents_read,
            "documentsWritten": r.documents_written,
            "tokensWritten": r.tokens_written,
            "quarantined": r.quarantined,
            "quarantineUri": r.quarantine_uri,
            "steps": [s.to_dict() for s in r.steps],
        }

    def result_from_json(self, d: dict[str, Any]) -> IngestResult:
        return IngestResult(
            manifest_uri=d["manifestUri"],
            manifest=read_manifest(self._storage, d["manifestUri"]),
            steps=[StepStats.from_dict(s) for s in d["steps"]],
            documents_read=d["documentsRead"],
            documents_written=d["documentsWritten"],
            tokens_written=d["tokensWritten"],
            quarantined=d["quarantined"],
            quarantine_uri=d["quarantineUri"],
        )


def ingest_job_manager(
    storage_root: str,
    storage_config: StorageConfig | None = None,
    *,
    workers: int = 1,
    max_concurrent_jobs: int = 2,
    meter: Meter | None = None,
    recover: bool = True,
) -> JobManager[IngestResult, ProgressUpdate]:
    """The ingest service's job manager: records under ``<storage_root>/jobs/ingest/``."""
    storage = RoutingStorage(storage_config)
    return JobManager(
        IngestRunner(storage, storage_config, workers, meter),
        storage,
        storage_root,
        max_concurrent_jobs=max_concurrent_jobs,
        metrics=JobMetrics(meter),
        recover=recover,
    )
