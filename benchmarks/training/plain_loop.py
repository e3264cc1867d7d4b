"""The baseline training loop, hand-written: one process here, or one rank under ``torchrun_ddp.py``.

It does per step what a Shipyard worker does (``worker_loop.py`` + ``strategies.TorchEngine``): the
loader's micro batches, forward/backward with the gradient sync skipped until the last micro batch,
clip to 1.0, AdamW, scheduler, the loss averaged over ranks; and nothing else (no progress channel, no
stop polling, no metrics file). Run alone it is the single-process baseline, accumulating gradients
to the same global batch:

    python benchmarks/training/plain_loop.py --dataset file:///... --shape llama-tiny --out plain.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import time
from collections.abc import Callable
from typing import Any

from bench_setup import Trainee, add_config_args, build_trainee, config_from_args


def train(
    trainee: Trainee, wrapped: Any, steps: int, mean_over_ranks: Callable[[float], float]
) -> dict[str, Any]:
    """Train ``steps`` optimizer steps; returns the per-step records and the loop's wall-clock bounds."""
    import torch

    records: list[dict[str, float]] = []
    began_wall, began = time.time(), time.monotonic()
    for step in range(1, steps + 1):
        t0 = time.monotonic()
        micro = trainee.loader.next_step()
        data_s = time.monotonic() - t0
        losses = []
        for i, batch in enumerate(micro):
            last = i == len(micro) - 1
            sync = contextlib.nullcontext() if last or not hasattr(wrapped, "no_sync") else wrapped.no_sync()
            with sync:
                ids = batch["input_ids"]
                loss = wrapped(input_ids=ids, labels=ids).loss
                (loss / trainee.accum).backward()
            losses.append(float(loss.detach()))
        torch.nn.utils.clip_grad_norm_(trainee.model.parameters(), 1.0)
        trainee.optimizer.step()
        trainee.scheduler.step()
        trainee.optimizer.zero_grad(set_to_none=True)
        mean_loss = mean_over_ranks(sum(losses) / len(losses))
        dt = time.monotonic() - t0
        records.append(
            {
                "step": step,
                "loss": mean_loss,
                "step_time_s": dt,
                "data_s": data_s,
                "elapsed": time.monotonic() - began,
            }  # fmt: skip
        )
        if not math.isfinite(mean_loss):
            raise RuntimeError(f"loss is {mean_loss} at step {step}")
    return {"records": records, "loop_began_wall": began_wall, "loop_ended_wall": time.time()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_args(parser)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    import torch

    cfg = config_from_args(args)
    trainee = build_trainee(cfg, rank=0, world=1)
    result = train(trainee, trainee.model, cfg.steps, lambda x: x)
    result |= {"threads": torch.get_num_threads(), "processes": 1, "accum": trainee.accum}
    result |= {"flops_per_token": trainee.flops_per_token, "params": trainee.params}
    with open(args.out, "w") as f:
        json.dump(result, f)


if __name__ == "__main__":
    main()
