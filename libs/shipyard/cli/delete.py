"""``shipyard delete KIND NAME``: stop what an embedded resource keeps running.

Only a ModelDeployment keeps something running after ``shipyard apply`` returns (its inference server);
jobs end on their own and stay listed as history.
"""

from __future__ import annotations

import click

from shipyard.cli import display
from shipyard.cli.embedded_kinds import local_deployments
from shipyard.cli.get import AGENT_NAMES, resolve_kind
from shipyard.cli.main import CliContext
from shipyard.errors import InvalidArgument


@click.command("delete")
@click.argument("kind")
@click.argument("name")
@click.pass_obj
def delete(obj: CliContext, kind: str, name: str) -> None:
    """Stop the local ModelDeployment NAME (KIND: modeldeployment, md, ...) and forget it.

    KIND agent deletes the registered agent NAME with its sessions.
    """
    if kind.lower() in AGENT_NAMES:
        from shipyard.agents.catalog import open_catalog

        catalog = open_catalog(obj.config)
        try:
            catalog.delete(name)
        finally:
            catalog.close()
            catalog.store.close()
        display.out.print(f"agent {name} deleted")
        return
    if resolve_kind(kind) != "ModelDeployment":
        raise InvalidArgument.field(
            "kind", "only ModelDeployments keep running in embedded mode; jobs end by themselves"
        )
    local_deployments(obj).delete(name)
    display.out.print(f"modeldeployment {name} deleted")
