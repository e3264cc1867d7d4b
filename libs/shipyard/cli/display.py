"""Terminal rendering for the CLI: a progress bar with rate and ETA, per-step statistics, errors."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from shipyard.data.step import StepStats
from shipyard.errors import ShipyardError

MAX_COUNTERS = 8  # per step in the table; the full counters are in the manifest
console = Console(stderr=True)
out = Console()


class JobProgress:
    """A progress bar with rate and ETA, fed by ``update(...)``; use as a context manager.

    ``unit`` names what is counted for the rate (documents for ingest, tokens for training).
    """

    def __init__(self, title: str, unit: str = "docs") -> None:
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            TextColumn(f"{{task.fields[docs]:>11,}} {unit}  {{task.fields[rate]:>9,.0f}} {unit}/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task(title, total=None, docs=0, rate=0.0)
        self._title = title

    def __enter__(self) -> JobProgress:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, stage: str, completed: int, total: int, documents: int, elapsed: float) -> None:
        """``documents``: the running count of ``unit`` (its rate is count / elapsed)."""
        rate = documents / elapsed if elapsed > 0 else 0.0
        self._progress.update(
            self._task,
            description=f"{self._title} · {stage}",
            completed=completed,
            total=total or None,
            docs=documents,
            rate=rate,
        )


def stats_table(steps: Iterable[StepStats]) -> Table:
    table = Table(title="Per-step statistics", show_lines=False)
    for col, justify in (("step", "left"), ("in", "right"), ("out", "right"), ("dropped", "right")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    table.add_column("dropped by reason / counters", overflow="fold")
    for s in steps:
        reasons = ", ".join(f"{k}={v:,}" for k, v in s.dropped.most_common())
        extra = ", ".join(f"{k}={v:,}" for k, v in s.extra.most_common(MAX_COUNTERS))
        if len(s.extra) > MAX_COUNTERS:
            extra += f", … {len(s.extra) - MAX_COUNTERS} more"  # e.g. one counter per detected language
        detail = "; ".join(x for x in (reasons, extra) if x)
        table.add_row(s.name, f"{s.docs_in:,}", f"{s.docs_out:,}", f"{sum(s.dropped.values()):,}", detail)
    return table


def summary_table(rows: Iterable[tuple[str, Any]]) -> Table:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    for k, v in rows:
        table.add_row(k, f"{v:,}" if isinstance(v, int) else str(v))
    return table


def print_error(exc: ShipyardError) -> None:
    """What a user sees for bad input: the code, the message and each bad field — no traceback."""
    console.print(f"[bold red]error[/] ({exc.code.value.lower().replace('_', ' ')}): {exc.message}")
    for v in exc.violations:
        console.print(f"  [yellow]{v.field}[/]: {v.description}")
