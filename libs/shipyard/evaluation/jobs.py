"""Evaluation jobs as resources: the ``JobRunner`` that plugs ``run_evaluation`` into ``JobManager``.

An ``EvaluationJob`` spec (the same one the operator runs as a Kubernetes Job) is validated completely
up front (fields, task names with closest-name hints, the model reference), then run in the background
with progress (samples done/total per task) and cancellation. The result is the report's summary; the
full report lives at ``reportUri`` (default ``<root>/evaluations/<job>/report.json``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pydantic
from opentelemetry.metrics import Meter

from shipyard.config import StorageConfig
from shipyard.errors import InvalidArgument, from_pydantic
from shipyard.evaluation.runner import (
    DEFAULT_DATA_PATH,
    EvalProgress,
    EvaluationPlan,
    TaskProgress,
    run_evaluation,
)
from shipyard.evaluation.tasks import TaskRegistry
from shipyard.jobs.manager import JobManager
from shipyard.jobs.metrics import JobMetrics
from shipyard.resources.evaluation_job import EvaluationJobSpec
from shipyard.storage import join
from shipyard.storage.routing import RoutingStorage

__all__ = ["EvalSummary", "EvaluationRunner", "evaluation_job_manager"]


@dataclass(frozen=True)
class EvalSummary:
    """A finished evaluation job: scores (``task/metric``), dimensions and where the full report is."""

    report_uri: str
    scores: dict[str, float]
    dimensions: dict[str, float]
    num_samples: int
    num_failed: int
    stderr: dict[str, float] = field(default_factory=dict)  # standard error per score key


class EvaluationRunner:
    kind = "evaluation"

    def __init__(
        self,
        storage: RoutingStorage,
        storage_root: str,
        storage_config: StorageConfig | None = None,
        *,
        data_root: str | None = None,
        executor: str = "local",
        workers: int = 1,
        device: str = "cpu",
        resolve_model_from: Callable[[str], str] | None = None,
    ) -> None:
        """``resolve_model_from``: a TrainingJob name -> its output model (embedded mode's ``modelFrom``)."""
        self._storage = storage
        self._root = storage_root
        self._storage_config = storage_config
        self._data_root = data_root or join(storage_root, DEFAULT_DATA_PATH)
        self._executor = executor
        self._workers = workers
        self._device = device
        self._resolve_model_from = resolve_model_from

    def _parse(self, spec: dict[str, Any]) -> EvaluationJobSpec:
        try:
            return EvaluationJobSpec.model_validate(spec)
        except pydantic.ValidationError as exc:
            raise from_pydantic(exc, prefix="spec") from exc

    def validate(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        parsed = self._parse(spec)
        TaskRegistry.builtin().resolve(parsed.tasks, field="spec.tasks")
        if parsed.model_from is not None and self._resolve_model_from is None:
            raise InvalidArgument.field(
                "spec.modelFrom", "only the operator resolves modelFrom here; set spec.model to the model"
            )
        return parsed.model_dump(mode="json", by_alias=True, exclude_none=True)

    def suspended(self, spec: dict[str, Any]) -> bool:
        return False

    def plan(self, name: str, spec: dict[str, Any]) -> EvaluationPlan:
        parsed = self._parse(spec)
        model = parsed.model
        if model is None:
            assert parsed.model_from is not None and self._resolve_model_from is not None
            model = self._resolve_model_from(parsed.model_from.training_job)
        return EvaluationPlan(
            model=model,
            model_name=parsed.model_name,
            tasks=tuple(parsed.tasks),
            data_root=self._data_root,
            storage_root=self._root,
            limit=parsed.limit,
            num_fewshot=parsed.num_fewshot,
            batch_size=parsed.batch_size,
            seed=parsed.seed,
            output_uri=parsed.output_uri or join(self._root, "evaluations", name),
            executor="ray" if self._executor == "ray" else "local",
            workers=self._workers,
            device=self._device,
            storage_config=self._storage_config,
        )

    def run(
        self,
        name: str,
        spec: dict[str, Any],
        labels: dict[str, str],
        on_progress: Callable[[EvalProgress], None],
        cancel: threading.Event,
    ) -> EvalSummary:
        report = run_evaluation(
            self.plan(name, spec), storage=self._storage, progress=on_progress, cancel=cancel
        )
        return EvalSummary(
            report_uri=report.uri or "",
            scores=report.scores(),
            dimensions=dict(report.dimensions),
            num_samples=sum(t.num_samples for t in report.tasks if not t.subtasks),
            num_failed=report.num_failed,
            stderr=report.stderrs(),
        )

    def progress_to_json(self, p: EvalProgress) -> dict[str, Any]:
        return {
            "tasks": {
                k: {"done": t.done, "total": t.total, "failed": t.failed, "cached": t.cached}
                for k, t in p.tasks.items()
            },
            "samplesDone": p.samples_done,
            "samplesTotal": p.samples_total,
        }

    def progress_from_json(self, d: dict[str, Any]) -> EvalProgress:
        return EvalProgress({k: TaskProgress(**v) for k, v in d["tasks"].items()})

    def result_to_json(self, r: EvalSummary) -> dict[str, Any]:
        return {
            "reportUri": r.report_uri,
            "scores": r.scores,
            "dimensions": r.dimensions,
            "numSamples": r.num_samples,
            "numFailed": r.num_failed,
            "stderr": r.stderr,
        }

    def result_from_json(self, d: dict[str, Any]) -> EvalSummary:
        return EvalSummary(
            d["reportUri"], d["scores"], d["dimensions"], d["numSamples"], d["numFailed"], d.get("stderr", {})
        )


def evaluation_job_manager(
    storage_root: str,
    storage_config: StorageConfig | None = None,
    *,
    data_root: str | None = None,
    executor: str = "local",
    workers: int = 1,
    device: str = "cpu",
    resolve_model_from: Callable[[str], str] | None = None,
    max_concurrent_jobs: int = 1,
    meter: Meter | None = None,
    recover: bool = True,
) -> JobManager[EvalSummary, EvalProgress]:
    """The evaluation service's job manager: records under ``<storage_root>/jobs/evaluation/``.

    ``data_root`` holds the benchmark files (default ``<storage_root>/datasets/eval``). One job at a time
    by default: each one loads a model and takes the machine's cores.
    """
    storage = RoutingStorage(storage_config)
    runner = EvaluationRunner(
        storage,
        storage_root,
        storage_config,
        data_root=data_root,
        executor=executor,
        workers=workers,
        device=device,
        resolve_model_from=resolve_model_from,
    )
    return JobManager(
        runner,
        storage,
        storage_root,
        max_concurrent_jobs=max_concurrent_jobs,
        metrics=JobMetrics(meter),
        recover=recover,
    )
