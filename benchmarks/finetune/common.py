"""What both benchmarked sides share: the job, the data (encoded once by Shipyard), the batches, the
steady-state figures and the peak-memory reading.

The data is encoded once by ``prepare_finetune`` (the driver step of a real finetune), so both sides train
on the identical token rows in the identical order (``ShuffledRows`` with the job's seed); the base
model is SmolLM2-135M-Instruct converted once from its GGUF file to an HF safetensors directory (what
the driver's base-model cache holds), loaded by both sides from that directory.
"""

from __future__ import annotations

import json
import pathlib
import statistics
import sys
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO))

METHODS = ("lora", "qlora", "full")
# A variant is a method with gradient checkpointing at the spec's default (on for qlora only), or
# forced with a suffix: "lora+gc" (on), "qlora-gc" (off).
VARIANTS = ("lora", "qlora", "full", "lora+gc", "qlora-gc")


def parse_variant(variant: str) -> tuple[str, bool]:
    """(method, gradient checkpointing) of a variant name."""
    for suffix, on in (("+gc", True), ("-gc", False)):
        if variant.endswith(suffix):
            return variant.removesuffix(suffix), on
    if variant not in METHODS:
        raise SystemExit(f"unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
    return variant, variant == "qlora"


def job_document(
    method: str, base: str, data: str, *, steps: int, batch: int, seq_len: int, checkpointing: bool
) -> dict[str, Any]:
    finetune: dict[str, Any] = {
        "method": method,
        "maxSeqLen": seq_len,
        "badRecords": {"maxFraction": 0.9},
        "gradientCheckpointing": checkpointing,
    }
    if method != "full":
        finetune["lora"] = {"r": 8, "alpha": 16, "dropout": 0.0}  # all linear projections (the default)
    return {
        "apiVersion": "shipyard.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": f"bench-{method}"},
        "spec": {
            "type": "finetune",
            "model": base,
            "data": {"dataset": data},
            "finetune": finetune,
            "hyperparameters": {
                "steps": steps,
                "globalBatchSize": batch,
                "microBatchSize": batch,
                "learningRate": 1e-4,
                "schedule": "constant",
                "weightDecay": 0.0,
                "gradClip": 1.0,
                "seed": 0,
            },
            "resources": {"workers": 1, "cpusPerWorker": 2},
            "checkpoint": {"everySteps": 100000},
        },
    }


def steady(records: list[dict[str, Any]], warmup: int) -> dict[str, float]:
    """Tokens/s over the steps after ``warmup``: real (unpadded) tokens / summed step times."""
    window = [r for r in records if r["step"] > warmup]
    tokens = sum(r["tokens"] for r in window)
    seconds = sum(r["step_time_s"] for r in window)
    return {
        "tokens_per_s": tokens / seconds,
        "step_time_s": statistics.median(r["step_time_s"] for r in window),
        "final_loss": records[-1]["loss"],
    }


def _status_mb(pid: int | str, key: str) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return float("nan")


def vm_hwm_mb(pid: int | str = "self") -> float:
    """The process's resident-set high-water mark (VmHWM), in MB."""
    return _status_mb(pid, "VmHWM:")


def vm_rss_mb(pid: int | str = "self") -> float:
    """The process's resident set now (VmRSS), in MB."""
    return _status_mb(pid, "VmRSS:")


def reset_hwm(pid: int | str = "self") -> None:
    """Restart the process's VmHWM from its current RSS (Linux ``clear_refs`` 5), so the next reading is
    the peak of what runs after: training steps, without the load-time spike of reading the fp32
    checkpoint (file pages count as resident while the 4-bit copy is made)."""
    pathlib.Path(f"/proc/{pid}/clear_refs").write_text("5")


def write_result(path: str, result: dict[str, Any]) -> None:
    pathlib.Path(path).write_text(json.dumps(result, indent=2))
