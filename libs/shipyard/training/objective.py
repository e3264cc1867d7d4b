"""What a micro batch's loss is: the objective an ``Engine`` backpropagates.

An objective takes the model's forward (the wrapped model: DDP, FSDP or DeepSpeed) and a batch dict of
tensors, and returns the loss tensor plus extra scalars to log (e.g. DPO's reward accuracy). The
default is next-token cross-entropy: ``labels`` default to ``input_ids`` (pretraining); finetuning
batches carry ``labels`` with ``-100`` on tokens that do not count (prompts, padding) and
``position_ids`` for packed rows.

``LabelledTokenLoss`` is the same loss for batches where most positions carry no label (finetuning: prompt
and padding tokens are ``-100``): it runs the LM head only on the hidden states whose next token counts,
instead of producing ``[batch, length, vocab]`` logits and discarding most of them in the loss (the
trick of XTuner's and Liger's fused heads, without their kernels). The head is 20% of SmolLM2-135M's
FLOPs per position and its logits the largest activation, so this saves time and peak memory in step
with the share of unlabelled positions.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

import torch
from torch import nn

__all__ = ["LabelledTokenLoss", "Objective", "causal_lm", "label_tokens"]

# cross_entropy's default; the value finetune.encode.IGNORE_INDEX writes (that module stays torch-free).
IGNORE_INDEX = -100

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


class LabelledTokenLoss:
    """``causal_lm``'s loss, with the LM head computed only where ``labels[:, 1:] != -100``.

    A forward pre-hook on ``model.get_output_embeddings()`` hands the head ``hidden[:, :-1][mask]``
    (``[n_labelled, hidden]``) while this objective's forward runs, so the model returns ``[n, vocab]``
    logits; elementwise post-processing of logits (scaling, soft-capping) applies to them unchanged. The
    hook does nothing outside that call. Call it with the wrapped model (DDP, FSDP, DeepSpeed) as usual:
    the hook sits on the inner module. A model whose head bypasses its output-embeddings module returns
    full logits, which are then selected here (same loss, no saving). A micro batch with no labelled token
    contributes a loss of 0 (not NaN).
    """

    def __init__(self, model: nn.Module) -> None:
        head = model.get_output_embeddings()
        if head is None:
            raise ValueError(f"{type(model).__name__} has no output embeddings (LM head) to select for")
        self._mask: torch.Tensor | None = None
        head.register_forward_pre_hook(self._select)

    def _select(self, module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...] | None:
        if self._mask is None:
            return None
        hidden = args[0]
        return (hidden[:, :-1][self._mask], *args[1:])

    def __call__(self, forward: Callable[..., Any], batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        inputs = dict(batch)
        target = inputs.pop("labels", inputs["input_ids"])[:, 1:]
        mask = target != IGNORE_INDEX
        self._mask = mask
        try:
            logits = forward(**inputs, use_cache=False).logits  # use_cache: see causal_lm
        finally:
            self._mask = None
        if logits.dim() == 3:  # the head did not run through the hooked module
            logits = logits[:, :-1][mask]
        if logits.shape[0] == 0:
            return logits.sum() * 0.0, {}
        return torch.nn.functional.cross_entropy(logits.float(), target[mask]), {}


def label_tokens(batch: Batch) -> int:
    """How many tokens of ``batch`` carry loss (all of them for a pretraining batch)."""
    labels = batch.get("labels")
    if labels is None:
        return int(batch["input_ids"].numel())
    return int((labels[:, 1:] != IGNORE_INDEX).sum())
