"""``shipyard apply -f FILE``: run any Shipyard manifest (one or several documents) in embedded mode.

The same YAML that ``kubectl apply`` sends to a cluster runs here without one: each document is
validated first (all of them, before anything runs), then run in order through the kind's embedded
command. Kinds whose service is not part of this installation yet are rejected before anything runs.
"""

from __future__ import annotations

import pathlib
from typing import Any

import click
import yaml

from shipyard.cli import ingest as ingest_cli
from shipyard.cli import train as train_cli
from shipyard.cli.main import CliContext
from shipyard.data.spec import IngestJob, parse_job
from shipyard.errors import FailedPrecondition, InvalidArgument
from shipyard.training.spec import TrainingJob, parse_training_job

RUNNABLE = {"IngestJob", "TrainingJob"}
NOT_YET = {"EvaluationJob": "evaluation", "ModelDeployment": "inference"}


def load_documents(path: str) -> list[dict[str, Any]]:
    p = pathlib.Path(path)
    if not p.is_file():
        raise InvalidArgument.field("file", f"{p} does not exist or is not a file")
    try:
        docs = [d for d in yaml.safe_load_all(p.read_text(encoding="utf-8")) if d is not None]
    except yaml.YAMLError as exc:
        raise InvalidArgument.field("file", f"{p} is not valid YAML: {exc}") from None
    for i, doc in enumerate(docs):
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if kind in NOT_YET:
            raise FailedPrecondition(
                f"document {i} ({kind}): the {NOT_YET[kind]} service is not part of this installation yet; "
                "apply it to a cluster with the operator, or run the other documents on their own"
            )
        if kind not in RUNNABLE:
            raise InvalidArgument.field(
                f"[{i}].kind", f"{kind!r} is not a Shipyard kind; expected one of {sorted(RUNNABLE)}"
            )
    return docs


@click.command("apply")
@click.option(
    "-f", "--file", "path", required=True, type=click.Path(dir_okay=False), help="Manifest(s), YAML."
)
@click.pass_obj
def apply(obj: CliContext, path: str) -> None:
    """Run the manifests in FILE here, in order (IngestJob, TrainingJob); `shipyard jobs` lists them.

    Every document is validated before the first one runs.
    """
    jobs: list[IngestJob | TrainingJob] = []
    for i, doc in enumerate(load_documents(path)):
        try:
            jobs.append(parse_job(doc) if doc["kind"] == "IngestJob" else parse_training_job(doc))
        except InvalidArgument as exc:
            raise InvalidArgument(f"document {i}: {exc.message}", violations=exc.violations) from None
    for job in jobs:
        if isinstance(job, IngestJob):
            ingest_cli.run_job(obj, job)
        else:
            train_cli.run_job(obj, job)
