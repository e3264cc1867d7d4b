"""Step metrics: what one optimizer step measured, the MFU estimate, the JSONL log and the OTel meters.

The JSONL log lives next to the checkpoints (``<checkpoint uri>/metrics.jsonl``). Rank 0 appends to a
local copy every step and uploads it with each checkpoint and at the end; a resumed run first reloads
the uploaded file and drops the lines after its checkpoint, since it recomputes those steps.
"""

from __future__ import annotations

import json
import pathlib
from dataclasses import asdict, dataclass, field
from typing import Any

from opentelemetry import metrics as otel

from shipyard.errors import NotFound
from shipyard.storage.base import Storage

__all__ = ["METRICS_FILE", "MetricsLog", "StepMetrics", "TrainingMeters", "mfu"]

METRICS_FILE = "metrics.jsonl"


def mfu(flops_per_token: float, tokens_per_s: float, peak_flops: float | None, devices: int) -> float | None:
    """Model FLOPs utilisation: achieved FLOP/s over the hardware's peak (None when the peak is unknown)."""
    if not peak_flops or devices < 1:
        return None
    return flops_per_token * tokens_per_s / (peak_flops * devices)


@dataclass(frozen=True)
class StepMetrics:
    """One optimizer step, over all workers. ``loss`` is the mean over the global batch."""

    step: int
    loss: float
    lr: float
    grad_norm: float
    tokens_per_s: float
    step_time_s: float
    tokens_seen: int
    elapsed: float
    mfu: float | None = None
    extras: dict[str, float] = field(default_factory=dict)  # eval_loss, DPO reward stats, ...

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def scalars(self) -> dict[str, float]:
        """The per-step numbers a watcher shows (what ``TrainingProgress.metrics`` carries)."""
        keys = ("loss", "lr", "grad_norm", "tokens_per_s", "step_time_s", "mfu")
        return {**{k: float(v) for k in keys if (v := getattr(self, k)) is not None}, **self.extras}


class MetricsLog:
    """The JSONL step log: a local file appended every step, uploaded to ``uri`` on ``upload()``."""

    def __init__(self, storage: Storage, uri: str, local_path: pathlib.Path) -> None:
        self.storage, self.uri, self.local_path = storage, uri, local_path

    def resume(self, step: int) -> int:
        """Start from the uploaded log, keeping lines of steps ``<= step``; returns how many were kept."""
        try:
            lines = self.storage.read_text(self.uri).splitlines()
        except NotFound:
            lines = []
        kept = [line for line in lines if line.strip() and json.loads(line)["step"] <= step]
        self.local_path.write_text("".join(line + "\n" for line in kept))
        return len(kept)

    def append(self, metrics: StepMetrics) -> None:
        with self.local_path.open("a") as f:
            f.write(json.dumps(metrics.to_dict()) + "\n")

    def upload(self) -> None:
        if self.local_path.exists():
            self.storage.write_bytes(self.uri, self.local_path.read_bytes())

    @staticmethod
    def read(storage: Storage, uri: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in storage.read_text(uri).splitlines() if line.strip()]


class TrainingMeters:
    """OpenTelemetry instruments for training (no-ops until the process installs a MeterProvider)."""

    def __init__(self, job: str) -> None:
        meter = otel.get_meter("shipyard.training")
        self._attrs = {"job": job}
        self._loss = meter.create_gauge(
            "shipyard.training.loss", description="Training loss of the last step"
        )
        self._lr = meter.create_gauge("shipyard.training.learning_rate", description="Learning rate")
        self._rate = meter.create_gauge("shipyard.training.tokens_per_second", unit="{token}/s")
        self._mfu = meter.create_gauge("shipyard.training.mfu", description="Model FLOPs utilisation")
        self._tokens = meter.create_counter("shipyard.training.tokens", unit="{token}")
        self._steps = meter.create_counter("shipyard.training.steps", unit="{step}")

    def record(self, metrics: StepMetrics, new_tokens: int) -> None:
        self._loss.set(metrics.loss, self._attrs)
        self._lr.set(metrics.lr, self._attrs)
        self._rate.set(metrics.tokens_per_s, self._attrs)
        if metrics.mfu is not None:
            self._mfu.set(metrics.mfu, self._attrs)
        self._tokens.add(new_tokens, self._attrs)
        self._steps.add(1, self._attrs)
