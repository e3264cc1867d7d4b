"""``shipyard ingest``: run a pipeline embedded (``run``) or through the ingest service (``submit``...)."""

from __future__ import annotations

from typing import Any

import click

from shipyard.cli import display
from shipyard.cli.embedded import run_to_completion
from shipyard.cli.main import CliContext
from shipyard.data.executor.runner import IngestResult
from shipyard.data.jobs import IngestJobRecord, ingest_job_manager
from shipyard.data.spec import IngestJob, load_job_file


@click.group()
def ingest() -> None:
    """Clean, deduplicate and tokenize raw text into a Dataset (WanJuan-style pipeline).

    A job is a YAML manifest (kind: IngestJob) listing the input, the output and the steps;
    see examples/ingest-corpus.yaml. `run` executes it on this machine; `submit`, `get`, `list`,
    `watch` and `cancel` talk to a running ingest service (`shipyard up`).
    """


@ingest.command("run")
@click.option("-f", "--file", "path", required=True, type=click.Path(dir_okay=False), help="IngestJob YAML.")
@click.option("--workers", type=int, help="Parallel workers (default: config ingest.workers).")
@click.pass_obj
def run_cmd(obj: CliContext, path: str, workers: int | None) -> None:
    """Run an IngestJob here, with a progress bar, then print per-step statistics.

    Resumable: rerunning an interrupted job skips every shard that already finished.
    Ctrl-C cancels and removes partial output.
    """
    run_job(obj, load_job_file(path), workers)


def run_job(obj: CliContext, job: IngestJob, workers: int | None = None) -> IngestResult:
    """Run ``job`` here with a progress bar, print its statistics, return its result."""
    manager = ingest_job_manager(
        obj.config.storage.root,
        obj.config.storage,
        workers=workers or obj.config.ingest.workers,
        recover=False,
    )
    with display.JobProgress(f"ingest {job.metadata.name}") as bar:

        def update(record: IngestJobRecord) -> None:
            p = record.progress
            if p is not None:
                bar.update(p.stage, p.completed, p.total, p.documents_read, p.elapsed)

        result = run_to_completion(
            manager, job.metadata.name, job.spec.model_dump(mode="json"), job.metadata.labels, update
        )
    print_result(result)
    return result


def print_result(result: IngestResult) -> None:
    display.out.print(display.stats_table(result.steps))
    rows: list[tuple[str, Any]] = [
        ("documents read", result.documents_read),
        ("documents written", result.documents_written),
        ("tokens", result.tokens_written),
        ("quarantined records", result.quarantined),
        ("manifest", result.manifest_uri),
    ]
    if result.quarantined:
        rows.append(("quarantine", result.quarantine_uri))
    display.out.print(display.summary_table(rows))
