"""What a micro batch's loss is: the objective an ``Engine`` backpropagates.

An objective takes the model's forward (the wrapped model: DDP, FSDP or DeepSpeed) and a batch dict of
tensors, and returns the loss tensor plus extra scalars to log (e.g. DPO's reward accuracy). The
default is next-token cross-entropy: ``labels`` default to ``input_ids`` (pretraining); finetuning
batches carry ``labels`` with ``-100`` on tokens that do not count (prompts, padding) and
``position_ids`` for packed rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch

__all__ = ["Objective", "causal_lm", "label_tokens"]

Batch = dict[str, torch.Tensor]


class Objective(Protocol):
    def __call__(
        self, forward: Callable[..., Any], batch: Batch
    ) -> tuple[torch.Tensor, dict[str, float]]: ...


def causal_lm(forward: Callable[..., Any], batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
    """Mean cross-entropy over the tokens whose label is not -100 (HF shifts the labels itself).

    ``use_cache=False`` is not an optimisation: with a KV cache transformers does not derive the
    block-diagonal mask from restarting ``position_ids``, and packed examples would attend to each other.
    """
    inputs = dict(batch)
    inputs.setdefault("labels", inputs["input_ids"])
    return forward(**inputs, use_cache=False).loss, {}


def label_tokens(batch: Batch) -> int:
    """How many tokens of ``batch`` carry loss (all of them for a pretraining batch)."""
    labels = batch.get("labels")
    if labels is None:
        return int(batch["input_ids"].numel())
    return int((labels[:, 1:] != -100).sum())
