"""``shipyard up``: start the services on this machine (embedded mode) and keep them running.

Each service runs as its own process (``python -m shipyard_services.<name>``), exactly as in a pod,
with local storage under the data directory. Ctrl-C stops them gracefully.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import click

from shipyard.cli import display
from shipyard.cli.main import CliContext
from shipyard.errors import Unavailable

SERVICES = ("ingest", "training", "evaluation", "agents")  # inference needs a model: `shipyard serve`
READY_TIMEOUT_SECONDS = 60.0


@click.command("up")
@click.option(
    "--service", "services", multiple=True, type=click.Choice(SERVICES), help="Only these (default: all)."
)
@click.pass_obj
def up(obj: CliContext, services: tuple[str, ...]) -> None:
    """Start Shipyard's services locally with storage under the data directory; Ctrl-C stops them."""
    procs: list[subprocess.Popen[str]] = []
    data_dir = str(obj.config.storage.data_dir)
    try:
        for name in services or SERVICES:
            proc = subprocess.Popen(
                [sys.executable, "-m", f"shipyard_services.{name}", "--data-dir", data_dir],
                stdout=subprocess.PIPE,
                text=True,
            )
            procs.append(proc)
            display.console.print(f"[green]{name}[/] {_await_ready(proc, name)}")
        display.console.print(f"storage: {obj.config.storage.root}   (Ctrl-C to stop)")
        for proc in procs:
            proc.wait()
    except KeyboardInterrupt:
        display.console.print("stopping…")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            proc.wait()


def _await_ready(proc: subprocess.Popen[str], name: str) -> str:
    """The service's READY line (its bound addresses); fail if it exits or stays silent too long."""
    line: list[str] = []

    def read() -> None:
        assert proc.stdout is not None
        for text in proc.stdout:
            if text.startswith("READY"):
                line.append(text.strip().removeprefix(f"READY {name} "))
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(READY_TIMEOUT_SECONDS)
    if not line:
        raise Unavailable(f"service {name} did not start (exit code {proc.poll()}); see its log above")
    return line[0]
