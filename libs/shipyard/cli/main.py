"""``shipyard``: the entry point and its top-level commands.

Commands only parse arguments, call a core (or a service through its gRPC client) and render the
result; every ``ShipyardError`` is printed as a field-level message with exit code 2.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import click

from shipyard import __version__
from shipyard.cli import display
from shipyard.config import ShipyardConfig, documented_defaults, load_config
from shipyard.errors import ShipyardError


@dataclass
class CliContext:
    config: ShipyardConfig


class _Group(click.Group):
    """Turns typed errors anywhere under a command into a clean message and exit code 2."""

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except ShipyardError as exc:
            display.print_error(exc)
            ctx.exit(2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="shipyard")
@click.option("--config", "config_path", type=click.Path(dir_okay=False), help="YAML config file.")
@click.option("--data-dir", type=click.Path(file_okay=False), help="Local data directory (embedded mode).")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, data_dir: str | None) -> None:
    """Shipyard: ingest, train, finetune, evaluate, serve and build agents on LLMs.

    Runs embedded on one machine (local storage, local processes/Ray) or against the services
    on a cluster. Configuration: defaults < --config/$SHIPYARD_CONFIG < $SHIPYARD_* < flags;
    see `shipyard config`.
    """
    overrides = {"storage.data_dir": data_dir, "storage.root": ""} if data_dir else None
    try:
        ctx.obj = CliContext(load_config(config_path, overrides))
    except ShipyardError as exc:
        display.print_error(exc)
        ctx.exit(2)


@cli.command("config")
@click.pass_obj
def config_cmd(obj: CliContext) -> None:
    """Show every setting with its type, default and meaning, then the effective values."""
    display.out.print(documented_defaults())
    display.out.print_json(obj.config.model_dump_json(exclude={"grpc": {"auth_token"}}))


def _register() -> None:
    from shipyard.cli.agent import agent
    from shipyard.cli.apply import apply
    from shipyard.cli.delete import delete
    from shipyard.cli.evaluate import evaluate
    from shipyard.cli.finetune import finetune
    from shipyard.cli.get import get
    from shipyard.cli.ingest import ingest
    from shipyard.cli.ingest_remote import COMMANDS as INGEST_REMOTE
    from shipyard.cli.jobs import jobs
    from shipyard.cli.serve import chat, serve
    from shipyard.cli.train import train
    from shipyard.cli.up import up

    for command in INGEST_REMOTE:
        ingest.add_command(command)
    cli.add_command(ingest)
    cli.add_command(train)
    cli.add_command(finetune)
    cli.add_command(evaluate)
    cli.add_command(serve)
    cli.add_command(chat)
    cli.add_command(jobs)
    cli.add_command(apply)
    cli.add_command(get)
    cli.add_command(delete)
    cli.add_command(up)
    cli.add_command(agent)


_register()


def main() -> None:
    sys.exit(cli.main(prog_name="shipyard", standalone_mode=True))
