"""The loss curve of a training run: a PNG (matplotlib, headless) and a one-line terminal sparkline."""

from __future__ import annotations

import json
import pathlib
from typing import Any

from shipyard.storage.base import Storage

_BARS = "▁▂▃▄▅▆▇█"


def read_metrics(storage: Storage, uri: str) -> list[dict[str, Any]]:
    """Per-step records from a run's metrics JSONL (the last record of a step wins after a resume)."""
    by_step: dict[int, dict[str, Any]] = {}
    for line in storage.read_text(uri).splitlines():
        if line.strip():
            record = json.loads(line)
            by_step[int(record["step"])] = record
    return [by_step[k] for k in sorted(by_step)]


def save_png(records: list[dict[str, Any]], path: pathlib.Path, title: str) -> pathlib.Path:
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in records]
    fig, ax = plt.subplots(figsize=(7, 4), dpi=120)
    ax.plot(steps, [r["loss"] for r in records], label="train loss", color="tab:blue")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if any("lr" in r for r in records):
        lr_ax = ax.twinx()
        lr_ax.plot(steps, [r.get("lr", 0.0) for r in records], color="tab:orange", alpha=0.5, label="lr")
        lr_ax.set_ylabel("learning rate")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def sparkline(values: list[float], width: int = 60) -> str:
    if not values:
        return ""
    stride = max(1, len(values) // width)
    sampled = values[::stride]
    lo, hi = min(sampled), max(sampled)
    span = (hi - lo) or 1.0
    return "".join(_BARS[min(len(_BARS) - 1, int((v - lo) / span * (len(_BARS) - 1)))] for v in sampled)
