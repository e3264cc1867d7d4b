"""``shipyard jobs``: every job recorded under the storage root, in ``kubectl get``-like columns."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import click
from rich.table import Table

from shipyard.cli import display
from shipyard.cli.get import _age
from shipyard.cli.main import CliContext
from shipyard.storage.routing import RoutingStorage
from shipyard.storage.uri import join


@click.command("jobs")
@click.option("--kind", help="Only this kind (ingest, training, ...).")
@click.pass_obj
def jobs(obj: CliContext, kind: str | None) -> None:
    """List jobs run here or by the local services (newest last)."""
    storage = RoutingStorage(obj.config.storage)
    rows = []
    for record in storage.list(join(obj.config.storage.root, "jobs")):
        if not record.uri.endswith(".json"):
            continue
        job_kind = record.uri.rsplit("/", 2)[-2]
        if kind and job_kind != kind:
            continue
        d = json.loads(storage.read_text(record.uri))
        reason = d["conditions"][-1]["reason"] if d.get("conditions") else ""
        rows.append((d["createTime"], d["name"], job_kind, d["state"], reason, d.get("message", "")))
    table = Table(box=None)
    for col in ("NAME", "KIND", "STATE", "REASON", "AGE", "MESSAGE"):
        table.add_column(col)
    now = datetime.now(UTC)
    for created, name, job_kind, state, reason, message in sorted(rows):
        table.add_row(
            name, job_kind, state, reason, _age(now - datetime.fromisoformat(created)), message[:60]
        )
    display.out.print(table)
