"""Scoring: backend results -> per-sample records -> task metrics, group scores and dimension summaries.

``score(task, planned, results)`` takes the output of ``prompts.build_requests`` and one result per
request in ``prompts.flatten`` order. A ``None`` result (a request that failed after the runner's retries)
marks its sample failed: recorded, counted, left out of the metrics. Code tasks also need a
``CodeSandbox`` to run the generated programs.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from shipyard.errors import FailedPrecondition, InvalidArgument
from shipyard.evaluation import metrics as m
from shipyard.evaluation.prompts import SampleRequests, choices_of, render, target_text
from shipyard.evaluation.tasks.spec import Metric, MetricSpec, TaskSpec
from shipyard.evaluation.types import (
    CodeSandbox,
    Dimension,
    GenerationResult,
    LoglikelihoodResult,
    ModelResult,
    OutputType,
    SampleRecord,
    TaskResult,
)

__all__ = ["aggregate_group", "collapse_groups", "dimension_summary", "score"]


def _score_choices(
    task: TaskSpec, item: SampleRequests, results: Sequence[LoglikelihoodResult]
) -> SampleRecord:
    doc = item.sample.doc
    lls = [r.logprob for r in results]
    choices = choices_of(task, doc)
    gold = doc[task.gold_field]
    best = max(range(len(lls)), key=lls.__getitem__)
    values: dict[str, float] = {}
    if isinstance(gold, list):  # MC2: labels per choice
        values["mc2"] = m.mc2_true_mass(lls, gold)
        correct = gold[best] == 1
    else:
        acc, acc_norm = m.mc_accuracy(lls, choices, gold)
        names = {s.name for s in task.metrics}
        values.update({k: v for k, v in (("acc", acc), ("acc_norm", acc_norm)) if Metric(k) in names})
        correct = best == gold
    return SampleRecord(
        item.sample.id,
        item.prompt,
        choices[best],
        target_text(task, doc),
        correct,
        extra={"logprobs": lls, "metrics": values},
    )


def _metric_key(metric: MetricSpec, extractor: str | None, first: bool) -> str:
    return metric.name.value if first or extractor is None else f"{metric.name.value},{extractor}"


def _score_generation(
    task: TaskSpec, item: SampleRequests, results: Sequence[GenerationResult]
) -> SampleRecord:
    completion = results[0].text
    if any(s.name is Metric.JUDGE for s in task.metrics):
        return SampleRecord(item.sample.id, item.prompt, completion, "", None, extra={"metrics": {}})
    em = next(s for s in task.metrics if s.name is Metric.EXACT_MATCH)
    reference = render(task.doc_to_target, item.sample.doc)
    extracted: dict[str, str] = {}
    values: dict[str, float] = {}
    for i, ex in enumerate(task.extract or (None,)):
        answer = completion
        if ex is not None:
            answer = m.extract_answer(
                completion, ex.regex, group_select=ex.group_select, fallback=ex.fallback
            )
            extracted[ex.name] = answer
        key = _metric_key(em, ex.name if ex else None, first=i == 0)
        values[key] = m.exact_match(
            answer, reference, ignore_case=em.ignore_case, regexes_to_ignore=em.regexes_to_ignore
        )
    shown_target = m.strip_patterns(reference, em.regexes_to_ignore)
    prediction = next(iter(extracted.values()), completion)
    return SampleRecord(
        item.sample.id,
        item.prompt,
        prediction,
        shown_target,
        values[em.name.value] == 1.0,
        extra={"completion": completion, "extracted": extracted, "metrics": values},
    )


def _score_code(
    task: TaskSpec,
    planned: Sequence[tuple[SampleRequests, Sequence[GenerationResult]]],
    sandbox: CodeSandbox | None,
    timeout_s: float,
    memory_mb: int,
) -> list[SampleRecord]:
    if sandbox is None:
        raise FailedPrecondition(f"task {task.name!r} runs generated code and needs a sandbox")
    programs = [
        render(task.code_program, {**item.sample.doc, "completion": r.text})
        for item, rs in planned
        for r in rs
    ]
    outcomes = iter(sandbox.run(programs, timeout_s=timeout_s, memory_mb=memory_mb))
    ks = next(s for s in task.metrics if s.name is Metric.PASS_AT_K).k
    records = []
    for item, rs in planned:
        runs = [next(outcomes) for _ in rs]
        passed = sum(r.passed for r in runs)
        values = {f"pass@{k}": m.pass_at_k(len(runs), passed, k) for k in ks}
        records.append(
            SampleRecord(
                item.sample.id,
                item.prompt,
                rs[0].text,
                render(task.doc_to_target, item.sample.doc),
                runs[0].passed,
                extra={
                    "statuses": [f"{r.status}: {r.detail}" if r.detail else str(r.status) for r in runs],
                    "num_passed": passed,
                    "metrics": values,
                },
            )
        )
    return records


def _failed(item: SampleRequests, why: str) -> SampleRecord:
    return SampleRecord(item.sample.id, item.prompt, "", "", None, failed=True, extra={"error": why})


def _summarize(
    name: str,
    records: Sequence[SampleRecord],
    *,
    primary: str,
    needs_judge: bool = False,
    dimensions: tuple[Dimension, ...] = (),
    group: str | None = None,
    keep_records: bool = True,
) -> TaskResult:
    per_metric: dict[str, list[float]] = defaultdict(list)
    for record in records:
        if not record.failed:
            for key, value in record.extra.get("metrics", {}).items():
                per_metric[key].append(value)
    stats = {key: m.mean_and_stderr(values) for key, values in per_metric.items()}
    return TaskResult(
        task=name,
        metrics={k: v[0] for k, v in stats.items()},
        stderr={k: v[1] for k, v in stats.items()},
        num_samples=sum(not r.failed for r in records),
        num_failed=sum(r.failed for r in records),
        needs_judge=needs_judge,
        primary_metric=primary,
        dimensions=dimensions,
        group=group,
        records=tuple(records) if keep_records else (),
    )


def score(
    task: TaskSpec,
    planned: Sequence[SampleRequests],
    results: Sequence[ModelResult | None],
    *,
    sandbox: CodeSandbox | None = None,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
) -> TaskResult:
    """Per-sample records and the task's metrics from the backend's results (in ``flatten`` order)."""
    expected = sum(len(p.requests) for p in planned)
    if len(results) != expected:
        raise InvalidArgument.field(
            "results", f"expected {expected} results (one per request), got {len(results)}"
        )
    want = LoglikelihoodResult if task.output_type is OutputType.MULTIPLE_CHOICE else GenerationResult
    records: list[SampleRecord | None] = []
    code_items: list[tuple[int, SampleRequests, list[Any]]] = []
    offset = 0
    for item in planned:
        chunk: list[Any] = list(results[offset : offset + len(item.requests)])
        offset += len(item.requests)
        if any(r is None for r in chunk):
            records.append(_failed(item, "the model backend failed on this sample"))
        elif not all(isinstance(r, want) for r in chunk):
            raise InvalidArgument.field("results", f"task {task.name!r} expects {want.__name__} results")
        elif task.output_type is OutputType.MULTIPLE_CHOICE:
            records.append(_score_choices(task, item, chunk))
        elif task.output_type is OutputType.CODE:
            code_items.append((len(records), item, chunk))
            records.append(None)  # filled in after one batched sandbox call
        else:
            records.append(_score_generation(task, item, chunk))
    if code_items:
        scored = _score_code(task, [(i, rs) for _, i, rs in code_items], sandbox, timeout_s, memory_mb)
        for (slot, _, _), record in zip(code_items, scored, strict=True):
            records[slot] = record
    done = [r for r in records if r is not None]
    needs_judge = any(s.name is Metric.JUDGE for s in task.metrics)
    return _summarize(
        task.name,
        done,
        primary="" if needs_judge else task.primary_metric,
        needs_judge=needs_judge,
        dimensions=task.dimensions,
        group=task.group,
    )


def aggregate_group(name: str, results: Sequence[TaskResult], *, weight_by_size: bool = True) -> TaskResult:
    """One score for a group (MMLU) from its subtasks' results.

    Weighted by size (lm-eval's default for MMLU): the mean over all the subtasks' samples, with its
    stderr. Otherwise the plain mean of subtask means, stderr sqrt(sum se^2) / m.
    """
    if not results:
        raise InvalidArgument.field("results", f"group {name!r} has no subtask results")
    primary = results[0].primary_metric
    dims = results[0].dimensions
    if weight_by_size:
        records = [r for res in results for r in res.records]
        grouped = _summarize(name, records, primary=primary, dimensions=dims, keep_records=False)
        return grouped
    keys = set.intersection(*(set(r.metrics) for r in results))
    metrics = {k: sum(r.metrics[k] for r in results) / len(results) for k in keys}
    stderr = {k: math.sqrt(sum(r.stderr[k] ** 2 for r in results)) / len(results) for k in keys}
    return TaskResult(
        name,
        metrics,
        stderr,
        sum(r.num_samples for r in results),
        sum(r.num_failed for r in results),
        primary_metric=primary,
        dimensions=dims,
    )


def collapse_groups(results: Iterable[TaskResult], *, weight_by_size: bool = True) -> list[TaskResult]:
    """Replace each group's subtask results by one group result (order of first appearance)."""
    order: list[str] = []
    members: dict[str, list[TaskResult]] = defaultdict(list)
    singles: dict[str, TaskResult] = {}
    for result in results:
        key = result.group or result.task
        if key not in order:
            order.append(key)
        if result.group is None:
            singles[key] = result
        else:
            members[key].append(result)
    return [
        singles[k] if k in singles else aggregate_group(k, members[k], weight_by_size=weight_by_size)
        for k in order
    ]


def dimension_summary(results: Iterable[TaskResult]) -> Mapping[Dimension, float]:
    """Macro average of each task's primary metric over the tasks tagged with a dimension.

    Pass group results (``collapse_groups``) so MMLU counts once, not once per subject; tasks without
    an automatic metric (needs a judge) or with no scored sample are left out.
    """
    scores: dict[Dimension, list[float]] = defaultdict(list)
    for result in results:
        value = result.metrics.get(result.primary_metric)
        if result.needs_judge or value is None or math.isnan(value):
            continue
        for dim in result.dimensions:
            scores[dim].append(value)
    return {dim: sum(v) / len(v) for dim, v in scores.items()}
