"""``shipyard apply -f FILE``: run any Shipyard manifest (one or several documents) in embedded mode.

The same YAML that ``kubectl apply`` sends to a cluster runs here without one: each document is
validated first (all of them, before anything runs), then run in order through its kind's embedded
path: IngestJob and TrainingJob as jobs, EvaluationJob through the evaluation job manager, and a
ModelDeployment as a local inference server that keeps running (``shipyard delete`` stops it), and an
Agent registered in the embedded session store (``shipyard agent`` talks to it).
References between documents (``modelFrom``, a gate) resolve against what ran before them.
"""

from __future__ import annotations

import pathlib
from collections.abc import Callable
from typing import Any

import click
import yaml
from pydantic import ValidationError

from shipyard.cli import embedded_kinds
from shipyard.cli import ingest as ingest_cli
from shipyard.cli import train as train_cli
from shipyard.cli.main import CliContext
from shipyard.data.spec import parse_job
from shipyard.errors import InvalidArgument, from_pydantic
from shipyard.resources.evaluation_job import EvaluationJob
from shipyard.resources.model_deployment import ModelDeployment
from shipyard.training.spec import parse_training_job


def _parse_evaluation_job(doc: dict[str, Any]) -> EvaluationJob:
    from shipyard.evaluation.tasks import TaskRegistry

    try:
        job = EvaluationJob.model_validate(doc)
    except ValidationError as exc:
        raise from_pydantic(exc) from None
    TaskRegistry.builtin().resolve(job.spec.tasks, field="spec.tasks")  # typos fail before anything runs
    return job


def _parse_model_deployment(doc: dict[str, Any]) -> ModelDeployment:
    try:
        return ModelDeployment.model_validate(doc)
    except ValidationError as exc:
        raise from_pydantic(exc) from None


def _parse_agent(doc: dict[str, Any]) -> Any:
    from shipyard.agents.catalog import parse_agent  # the agents extra (SQLAlchemy) only when used

    return parse_agent(doc)


# kind -> (validate the document, run the validated resource)
KINDS: dict[str, tuple[Callable[[dict[str, Any]], Any], Callable[[CliContext, Any], Any]]] = {
    "IngestJob": (parse_job, ingest_cli.run_job),
    "TrainingJob": (parse_training_job, train_cli.run_job),
    "EvaluationJob": (_parse_evaluation_job, embedded_kinds.run_evaluation_job),
    "ModelDeployment": (_parse_model_deployment, embedded_kinds.run_model_deployment),
    "Agent": (_parse_agent, embedded_kinds.run_agent),
}


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
        if kind not in KINDS:
            raise InvalidArgument.field(
                f"[{i}].kind", f"{kind!r} is not a Shipyard kind; expected one of {sorted(KINDS)}"
            )
    return docs


@click.command("apply")
@click.option(
    "-f", "--file", "path", required=True, type=click.Path(dir_okay=False), help="Manifest(s), YAML."
)
@click.pass_obj
def apply(obj: CliContext, path: str) -> None:
    """Run the manifests in FILE here, in order (jobs, ModelDeployments, Agents).

    Every document is validated before the first one runs. `shipyard get KIND` lists what ran.
    """
    resources = []
    for i, doc in enumerate(load_documents(path)):
        parse, run = KINDS[doc["kind"]]
        try:
            resources.append((parse(doc), run))
        except InvalidArgument as exc:
            raise InvalidArgument(f"document {i}: {exc.message}", violations=exc.violations) from None
    for resource, run in resources:
        run(obj, resource)
