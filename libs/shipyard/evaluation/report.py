"""The evaluation report: what a run wrote (``report.json`` + ``samples/<task>.jsonl``) and comparisons.

``report.json`` holds the model and its identity, the run's configuration, per-task metrics with
standard errors (subtasks and their group, e.g. every MMLU subject and ``mmlu``), the per-dimension
summary, failed/skipped counts with reasons, cache hits and timings. Per-sample records (prompt,
prediction, target, correct, per-sample metric values) go to one JSONL file per task next to it.

``compare_reports`` lays several reports side by side (rows task/metric, columns models) and renders
the table as Markdown or as a ``rich`` table for terminals.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from shipyard.errors import InvalidArgument
from shipyard.evaluation.types import SampleRecord, TaskResult
from shipyard.storage import Storage, join

__all__ = [
    "Comparison",
    "EvaluationReport",
    "TaskReport",
    "compare_reports",
    "read_report",
    "write_report",
]

REPORT_FILE = "report.json"
SAMPLES_DIR = "samples"


@dataclass(frozen=True)
class TaskReport:
    """One task's (or group's) line in the report; ``records`` are written to the samples file only."""

    task: str
    metrics: Mapping[str, float]
    stderr: Mapping[str, float]
    primary_metric: str
    dimensions: tuple[str, ...]
    num_samples: int
    num_failed: int = 0
    num_skipped: int = 0
    skipped_examples: tuple[str, ...] = ()
    needs_judge: bool = False
    group: str | None = None
    subtasks: tuple[str, ...] = ()
    cached_samples: int = 0
    seconds: float = 0.0
    records: tuple[SampleRecord, ...] = field(default=(), repr=False)

    @classmethod
    def from_result(cls, result: TaskResult, **extra: Any) -> TaskReport:
        return cls(
            task=result.task,
            metrics=dict(result.metrics),
            stderr=dict(result.stderr),
            primary_metric=result.primary_metric,
            dimensions=tuple(str(d) for d in result.dimensions),
            num_samples=result.num_samples,
            num_failed=result.num_failed,
            needs_judge=result.needs_judge,
            group=result.group,
            records=result.records,
            **extra,
        )

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("records")
        data["metrics"] = {k: _finite(v) for k, v in self.metrics.items()}
        data["stderr"] = {k: _finite(v) for k, v in self.stderr.items()}
        if self.num_failed:
            data["note"] = f"{self.num_failed} failed samples are excluded from the metrics"
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TaskReport:
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__ and k != "records"}
        for key in ("dimensions", "skipped_examples", "subtasks"):
            fields[key] = tuple(fields.get(key, ()))
        fields["metrics"] = {k: math.nan if v is None else v for k, v in fields["metrics"].items()}
        fields["stderr"] = {k: math.nan if v is None else v for k, v in fields["stderr"].items()}
        return cls(**fields)


def _finite(value: float) -> float | None:
    # JSON has no NaN (a metric over zero samples); null reads back as NaN.
    return None if math.isnan(value) else value


@dataclass(frozen=True)
class EvaluationReport:
    """A finished run. ``tasks`` lists every scored task and, after its subtasks, each group."""

    model: str
    model_identity: str
    config: Mapping[str, Any]
    tasks: tuple[TaskReport, ...]
    dimensions: Mapping[str, float]
    timings: Mapping[str, float]
    created_at: str
    uri: str | None = None

    @property
    def num_failed(self) -> int:
        return sum(t.num_failed for t in self.tasks if not t.subtasks)

    def task(self, name: str) -> TaskReport:
        for t in self.tasks:
            if t.task == name:
                return t
        raise InvalidArgument.field("task", f"no task {name!r} in the report; it has {self.task_names}")

    @property
    def task_names(self) -> list[str]:
        return [t.task for t in self.tasks]

    def scores(self) -> dict[str, float]:
        """Every metric as ``"<task>/<metric>"`` (what the operator's status and gates read), NaN left out."""
        return {f"{t.task}/{k}": v for t in self.tasks for k, v in t.metrics.items() if not math.isnan(v)}

    def stderrs(self) -> dict[str, float]:
        """The standard error of every score in ``scores()``, under the same keys (NaN left out)."""
        return {
            f"{t.task}/{k}": v
            for t in self.tasks
            for k, v in t.stderr.items()
            if not math.isnan(v) and not math.isnan(t.metrics.get(k, math.nan))
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "modelIdentity": self.model_identity,
            "config": dict(self.config),
            "tasks": [t.to_json() for t in self.tasks],
            "dimensions": dict(self.dimensions),
            "scores": self.scores(),
            "numFailed": self.num_failed,
            "timings": dict(self.timings),
            "createdAt": self.created_at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, uri: str | None = None) -> EvaluationReport:
        try:
            return cls(
                model=data["model"],
                model_identity=data["modelIdentity"],
                config=data["config"],
                tasks=tuple(TaskReport.from_json(t) for t in data["tasks"]),
                dimensions=data["dimensions"],
                timings=data["timings"],
                created_at=data["createdAt"],
                uri=uri,
            )
        except (KeyError, TypeError) as exc:
            raise InvalidArgument.field(
                "report", f"{uri or 'report'} is not an evaluation report: {exc}"
            ) from exc


def _record_json(record: SampleRecord) -> dict[str, Any]:
    return {
        "id": record.sample_id,
        "prompt": record.prompt,
        "prediction": record.prediction,
        "target": record.target,
        "correct": record.correct,
        "failed": record.failed,
        **dict(record.extra),
    }


def write_report(report: EvaluationReport, storage: Storage, output_uri: str) -> str:
    """Write ``report.json`` and the per-sample files under ``output_uri``; returns the report's URI."""
    for t in report.tasks:
        if t.records:
            lines = "".join(json.dumps(_record_json(r), ensure_ascii=False) + "\n" for r in t.records)
            storage.write_text(join(output_uri, SAMPLES_DIR, f"{t.task}.jsonl"), lines)
    uri = join(output_uri, REPORT_FILE)
    storage.write_text(uri, json.dumps(report.to_json(), indent=2, ensure_ascii=False))
    return uri


def read_report(storage: Storage, uri: str) -> EvaluationReport:
    """A report from its ``report.json`` URI or the folder holding it."""
    if not uri.endswith(".json"):
        uri = join(uri, REPORT_FILE)
    try:
        data = json.loads(storage.read_text(uri))
    except json.JSONDecodeError as exc:
        raise InvalidArgument.field("report", f"{uri} is not valid JSON: {exc}") from exc
    return EvaluationReport.from_json(data, uri=uri)


@dataclass(frozen=True)
class Comparison:
    """Rows ``(task, metric)``, one column per model; ``values[row][col]`` is ``(mean, stderr)`` or None."""

    models: tuple[str, ...]
    rows: tuple[tuple[str, str], ...]
    values: tuple[tuple[tuple[float, float] | None, ...], ...]

    def _cell(self, value: tuple[float, float] | None) -> str:
        if value is None or math.isnan(value[0]):
            return "-"
        mean, se = value
        return f"{mean:.4f} ± {se:.4f}" if not math.isnan(se) else f"{mean:.4f}"

    def markdown(self) -> str:
        header = "| task | metric | " + " | ".join(self.models) + " |"
        rule = "|" + "---|" * (len(self.models) + 2)
        body = [
            f"| {task} | {metric} | " + " | ".join(self._cell(v) for v in row) + " |"
            for (task, metric), row in zip(self.rows, self.values, strict=True)
        ]
        return "\n".join([header, rule, *body])

    def rich_table(self) -> Any:
        from rich.table import Table

        table = Table(title="Evaluation comparison")
        table.add_column("task")
        table.add_column("metric")
        for model in self.models:
            table.add_column(model, justify="right")
        for (task, metric), row in zip(self.rows, self.values, strict=True):
            table.add_row(task, metric, *(self._cell(v) for v in row))
        return table


def compare_reports(
    reports: Sequence[EvaluationReport],
    *,
    labels: Sequence[str] | None = None,
    include_subtasks: bool = False,
) -> Comparison:
    """Side-by-side metrics of several runs; a metric missing in a run shows as ``-``.

    Subtasks (each MMLU subject) are left out unless asked for: their group's row summarizes them.
    """
    if not reports:
        raise InvalidArgument.field("reports", "need at least one report to compare")
    names = list(labels) if labels is not None else [r.model for r in reports]
    if len(names) != len(reports):
        raise InvalidArgument.field("labels", f"{len(names)} labels for {len(reports)} reports")
    rows: list[tuple[str, str]] = []
    for report in reports:
        for t in report.tasks:
            if t.group is not None and not include_subtasks:
                continue
            for metric in t.metrics:
                if (t.task, metric) not in rows:
                    rows.append((t.task, metric))
    by_report = [{t.task: t for t in r.tasks} for r in reports]
    values = []
    for task, metric in rows:
        cells = []
        for tasks in by_report:
            t = tasks.get(task)
            cells.append(
                (t.metrics[metric], t.stderr.get(metric, math.nan)) if t and metric in t.metrics else None
            )
        values.append(tuple(cells))
    return Comparison(tuple(names), tuple(rows), tuple(values))
