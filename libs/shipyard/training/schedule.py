"""The learning-rate schedule: linear warmup, then cosine, linear or constant, floored at ``minLrRatio``.

All three shapes are transformers' warmup-stable-decay schedule (``get_wsd_schedule``): cosine/linear
decay over every step after warmup, constant is "stable" for the whole run. Its warmup starts at the
floor rather than at zero, so step 0 already moves the weights.
"""

from __future__ import annotations

import torch
from transformers.optimization import get_wsd_schedule

from shipyard.training.spec import HyperParameters

__all__ = ["make_scheduler"]


def make_scheduler(
    optimizer: torch.optim.Optimizer, hp: HyperParameters, total_steps: int
) -> torch.optim.lr_scheduler.LambdaLR:
    """The scheduler for ``total_steps`` optimizer steps of ``hp`` (stepped once per optimizer step)."""
    warmup = min(hp.warmup_steps, total_steps)
    rest = total_steps - warmup
    if hp.schedule == "constant":
        return get_wsd_schedule(
            optimizer, warmup, num_decay_steps=0, num_stable_steps=rest, min_lr_ratio=hp.min_lr_ratio
        )
    return get_wsd_schedule(
        optimizer,
        warmup,
        num_decay_steps=rest,
        num_stable_steps=0,
        decay_type=hp.schedule,
        min_lr_ratio=hp.min_lr_ratio,
    )
