"""``shipyard get KIND``: resources run here, in the same columns as ``kubectl get`` shows for the CRD.

The columns come from the generated CRD's ``additionalPrinterColumns`` (one source of truth), evaluated
on the resource as a cluster would hold it (``spec`` + ``status``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import click
from rich.table import Table

from shipyard.cli import display
from shipyard.cli.embedded_kinds import local_deployments
from shipyard.cli.main import CliContext
from shipyard.deployments.local import DeploymentRecord, deployment_status
from shipyard.errors import InvalidArgument
from shipyard.evaluation.status import evaluation_status
from shipyard.jobs.store import list_job_json
from shipyard.lifecycle import JobState
from shipyard.resources.crd import KINDS, crd
from shipyard.storage.routing import RoutingStorage

# Kinds that run in embedded mode.
_LOCAL = {"TrainingJob", "EvaluationJob", "ModelDeployment"}
# Agents live in the session store, not in the CRD table (yet): these names list them.
AGENT_NAMES = {"agent", "agents", "ag"}


def resolve_kind(name: str) -> str:
    """The kind named by ``name`` (kind, plural, short name or singular; any case)."""
    for kind, k in KINDS.items():
        if name.lower() in {kind.lower(), k.plural, k.short_name, k.plural.rstrip("s")}:
            return kind
    valid = sorted({k.plural for k in KINDS.values()} | {k.short_name for k in KINDS.values()})
    raise InvalidArgument.field("kind", f"unknown resource kind {name!r}; one of {', '.join(valid)}")


@click.command("get")
@click.argument("kind")
@click.pass_obj
def get(obj: CliContext, kind: str) -> None:
    """List resources of KIND (trainingjobs, tj, agents, ...) run here, with kubectl's columns."""
    if kind.lower() in AGENT_NAMES:
        _agents(obj)
        return
    kind = resolve_kind(kind)
    if kind not in _LOCAL:
        display.out.print(f"No {KINDS[kind].plural} run in embedded mode yet; use kubectl on a cluster.")
        return
    columns = crd(kind)["spec"]["versions"][0].get("additionalPrinterColumns", [])
    table = Table(box=None)
    table.add_column("NAME")
    for col in columns:
        table.add_column(col["name"].upper())
    items = _resources(obj, kind)
    for item in sorted(items, key=lambda r: r["metadata"]["name"]):
        table.add_row(item["metadata"]["name"], *(_cell(item, col) for col in columns))
    display.out.print(table)


def _agents(obj: CliContext) -> None:
    from shipyard.agents.catalog import open_store
    from shipyard.cli.agent import agents_table

    store = open_store(obj.config)
    try:
        display.out.print(agents_table(store.list_agents()))
    finally:
        store.close()


def _resources(obj: CliContext, kind: str) -> list[dict[str, Any]]:
    """The embedded resources of ``kind`` shaped as a cluster holds them (metadata, spec, status)."""
    if kind == "ModelDeployment":
        return [_deployment(record) for record in local_deployments(obj).list()]
    storage, root = RoutingStorage(obj.config.storage), obj.config.storage.root
    items = []
    for record in list_job_json(storage, root, "training" if kind == "TrainingJob" else "evaluation"):
        if kind == "TrainingJob":
            from shipyard.training.status import training_status

            status: Any = training_status(JobState(record["state"]), record)
        else:
            status = evaluation_status(record)
        items.append(
            {
                "metadata": {"name": record["name"], "creationTimestamp": record["createTime"]},
                "spec": _camel(record["spec"]),
                "status": status.model_dump(mode="json", by_alias=True, exclude_none=True),
            }
        )
    return items


def _deployment(record: DeploymentRecord) -> dict[str, Any]:
    status = deployment_status(record)
    return {
        "metadata": {"name": record.name, "creationTimestamp": record.create_time},
        "spec": {"model": record.launch.get("model")},
        "status": status.model_dump(mode="json", by_alias=True, exclude_none=True),
    }


def _camel(value: Any) -> Any:
    from pydantic.alias_generators import to_camel

    if isinstance(value, dict):
        return {to_camel(k): _camel(v) for k, v in value.items()}
    return value


def _cell(item: dict[str, Any], column: dict[str, Any]) -> str:
    value: Any = item
    for part in column["jsonPath"].lstrip(".").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if column.get("type") == "date":
        return _age(datetime.now(UTC) - datetime.fromisoformat(str(value)))
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, dict):  # e.g. an EvaluationJob's scores: metric=value pairs
        return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in value.items())
    return str(value)


def _age(delta: Any) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
