"""``shipyard eval``: score a model on benchmark tasks here (embedded), with a progress bar and tables.

Flags name the model and tasks (``--model M --tasks gsm8k,mmlu``), or ``-f`` takes an ``EvaluationJob``
manifest (the same document the service and the operator run). Either way the evaluation runs in this
process through ``shipyard.evaluation.runner.run_evaluation``: finished samples are cached under the
storage root, so a rerun (or a run after Ctrl-C) only computes what changed.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import click
from rich.table import Table

from shipyard.cli import display
from shipyard.errors import Cancelled, InvalidArgument
from shipyard.storage import join
from shipyard.storage.routing import RoutingStorage
from shipyard.storage.uri import from_local_path

if TYPE_CHECKING:
    from shipyard.cli.main import CliContext  # only a type: main imports this module to register it
    from shipyard.evaluation.report import EvaluationReport
    from shipyard.evaluation.runner import EvalProgress, EvaluationPlan
    from shipyard.resources.evaluation_job import EvaluationJob


@click.command("eval")
@click.option("-f", "--file", "path", type=click.Path(dir_okay=False), help="EvaluationJob YAML.")
@click.option("--model", help="Model: a name/URI/path, model:NAME[@V], or an http(s) OpenAI endpoint.")
@click.option("--tasks", help="Comma-separated task or group names, e.g. gsm8k,mmlu,hellaswag.")
@click.option("--limit", type=int, help="At most N samples per task.")
@click.option("--num-fewshot", type=int, help="Few-shot examples (task default if unset).")
@click.option("--batch-size", type=int, default=8, show_default=True, help="Samples per model call.")
@click.option("--model-name", help="The served model's name (for an endpoint --model).")
@click.option("--output", type=click.Path(file_okay=False), help="Report folder (default under the root).")
@click.option("--data-root", help="Benchmark files (default: config evaluation.data_root).")
@click.option(
    "--compare", "compare", multiple=True, type=click.Path(), help="Earlier report.json to compare with."
)
@click.option("--chart", type=click.Path(dir_okay=False), help="Save a per-dimension chart PNG here.")
@click.pass_obj
def evaluate(
    obj: CliContext,
    path: str | None,
    model: str | None,
    tasks: str | None,
    limit: int | None,
    num_fewshot: int | None,
    batch_size: int,
    model_name: str | None,
    output: str | None,
    data_root: str | None,
    compare: tuple[str, ...],
    chart: str | None,
) -> None:
    """Evaluate a model on benchmark tasks and print per-task scores (± stderr) and per-dimension means.

    Writes report.json plus per-sample records; --compare shows earlier reports side by side, --chart
    saves a radar/bar chart of the dimensions. Ctrl-C stops after the batch in flight (results so far
    stay cached).
    """
    plan = _plan(obj, path, model, tasks, limit, num_fewshot, batch_size, model_name, output, data_root)
    storage = RoutingStorage(obj.config.storage)
    earlier = [_read(storage, p) for p in compare]  # bad --compare files fail before any compute
    report = run_with_progress(plan, storage)
    print_report(report)
    if earlier:
        from shipyard.evaluation.report import compare_reports

        labels = [*(_label(r, p) for r, p in zip(earlier, compare, strict=True)), f"{report.model} (now)"]
        display.out.print(compare_reports([*earlier, report], labels=labels).rich_table())
    if chart:
        from shipyard.evaluation.chart import dimension_chart

        png = pathlib.Path(chart)
        png.parent.mkdir(parents=True, exist_ok=True)
        png.write_bytes(
            dimension_chart([*earlier, report], labels=[*(r.model for r in earlier), report.model])
        )
        display.out.print(f"chart   {png}")


def _plan(
    obj: CliContext,
    path: str | None,
    model: str | None,
    tasks: str | None,
    limit: int | None,
    num_fewshot: int | None,
    batch_size: int,
    model_name: str | None,
    output: str | None,
    data_root: str | None,
) -> EvaluationPlan:
    from shipyard.evaluation.jobs import EvaluationRunner
    from shipyard.evaluation.runner import EvaluationPlan

    root = obj.config.storage.root
    data_root = data_root or obj.config.evaluation.data_root
    executor, workers = obj.config.evaluation.executor, obj.config.evaluation.workers
    out = from_local_path(pathlib.Path(output).resolve()) if output else None
    if path is not None:
        if model or tasks:
            raise InvalidArgument.field("file", "give either -f MANIFEST or --model/--tasks, not both")
        job = _load_manifest(path)
        runner = EvaluationRunner(
            RoutingStorage(obj.config.storage),
            root,
            obj.config.storage,
            data_root=data_root,
            executor=executor,
            workers=workers,
        )
        spec = runner.validate(job.metadata.name, job.spec.model_dump(mode="json", by_alias=True))
        plan = runner.plan(job.metadata.name, spec)
        return dataclasses.replace(plan, model_name=model_name, output_uri=out or plan.output_uri)
    if not model:
        raise InvalidArgument.field("model", "name the model to evaluate (--model) or give -f MANIFEST")
    names = tuple(t.strip() for t in (tasks or "").split(",") if t.strip())
    if not names:
        raise InvalidArgument.field("tasks", "name at least one task, e.g. --tasks gsm8k,mmlu")
    from shipyard.evaluation.runner import DEFAULT_DATA_PATH

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    plan = EvaluationPlan(
        model=model,
        tasks=names,
        data_root=data_root or join(root, DEFAULT_DATA_PATH),
        storage_root=root,
        model_name=model_name,
        limit=limit,
        num_fewshot=num_fewshot,
        batch_size=batch_size,
        output_uri=out or join(root, "evaluations", f"cli-{stamp}"),
        executor=executor,
        workers=workers,
        storage_config=obj.config.storage,
    )
    plan.validate()
    return plan


def _load_manifest(path: str) -> EvaluationJob:
    import pydantic

    from shipyard.errors import from_pydantic
    from shipyard.resources.evaluation_job import EvaluationJob
    from shipyard.resources.meta import read_manifest_file

    data = read_manifest_file(path)
    if not isinstance(data, dict) or data.get("kind") != "EvaluationJob":
        raise InvalidArgument.field("kind", f"{path} is not an EvaluationJob manifest")
    try:
        return EvaluationJob.model_validate(data)
    except pydantic.ValidationError as exc:
        raise from_pydantic(exc) from exc


def run_with_progress(plan: EvaluationPlan, storage: RoutingStorage) -> EvaluationReport:
    """Run ``plan`` here behind a progress bar (samples, rate, ETA); Ctrl-C cancels between batches."""
    from shipyard.evaluation.runner import run_evaluation

    cancel = threading.Event()
    result: list[EvaluationReport] = []
    failure: list[BaseException] = []
    started = time.monotonic()
    with display.JobProgress(f"eval {_short(plan.model)}", unit="samples") as bar:

        def update(p: EvalProgress) -> None:
            running = [f"{n} {t.done}/{t.total}" for n, t in p.tasks.items() if t.done < t.total]
            stage = running[0] if running else "scoring"
            cached = sum(t.cached for t in p.tasks.values())
            bar.update(
                stage, p.samples_done, p.samples_total, p.samples_done - cached, time.monotonic() - started
            )

        def work() -> None:
            try:
                result.append(run_evaluation(plan, storage=storage, progress=update, cancel=cancel))
            except BaseException as exc:  # re-raised on the main thread, which owns the terminal
                failure.append(exc)

        # The evaluation runs on a worker thread so Ctrl-C (delivered to the main thread) can set the
        # cancel event and let the runner stop cleanly between batches.
        worker = threading.Thread(target=work, name="shipyard-eval", daemon=True)
        worker.start()
        while worker.is_alive():
            try:
                worker.join(0.5)
            except KeyboardInterrupt:
                display.console.print("[yellow]cancelling after the batch in flight…[/]")
                cancel.set()
    if failure:
        raise failure[0]
    if not result:
        raise Cancelled("evaluation cancelled")
    return result[0]


def print_report(report: EvaluationReport) -> None:
    """The per-task table (metric ± stderr, samples, failed, skipped) and the per-dimension summary."""
    table = Table(title=f"{report.model}")
    for col, justify in (("task", "left"), ("metric", "left"), ("value", "right"), ("± stderr", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for col in ("n", "failed", "skipped"):
        table.add_column(col, justify="right")
    for t in report.tasks:
        name = f"  {t.task}" if t.group is not None else t.task
        for i, (metric, value) in enumerate(t.metrics.items()):
            se = t.stderr.get(metric, math.nan)
            counts = (str(t.num_samples), str(t.num_failed), str(t.num_skipped)) if i == 0 else ("", "", "")
            table.add_row(name if i == 0 else "", metric, _num(value), _num(se), *counts)
        if t.needs_judge:
            table.add_row(name, "(needs a judge)", "-", "-", str(t.num_samples), str(t.num_failed), "")
    display.out.print(table)
    dims = Table(title="By dimension (mean primary score)")
    dims.add_column("dimension")
    dims.add_column("score", justify="right")
    for dim, value in report.dimensions.items():
        dims.add_row(dim, _num(value))
    display.out.print(dims)
    display.out.print(
        display.summary_table(
            [
                ("report", report.uri or "-"),
                ("failed samples", report.num_failed),
                ("seconds", f"{report.timings.get('totalSeconds', 0.0):.1f}"),
            ]
        )
    )


def _read(storage: RoutingStorage, path: str) -> EvaluationReport:
    from shipyard.evaluation.report import read_report

    uri = path if "://" in path else from_local_path(pathlib.Path(path).resolve())
    return read_report(storage, uri)


def _label(report: EvaluationReport, path: str) -> str:
    return f"{_short(report.model)} ({pathlib.Path(path).parent.name or path})"


def _short(model: str) -> str:
    return model.rstrip("/").rsplit("/", 1)[-1]


def _num(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.4f}"
