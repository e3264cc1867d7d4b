"""Direct Preference Optimization as a training objective (Rafailov et al., 2023; sigmoid loss).

For a pair (chosen ``c``, rejected ``r``) of replies to one prompt, with ``log pi(y)`` the summed
log-probability of the reply tokens (labels != -100) under the policy and ``log ref(y)`` under the
frozen reference:

    loss = -log sigmoid(beta * ((log pi(c) - log ref(c)) - (log pi(r) - log ref(r))))

The reference is the base model: with LoRA the same module with its adapter disabled (no second copy
in memory), with full finetuning a frozen copy made before training; ``referenceFree`` drops it. The
implicit rewards ``beta * (log pi - log ref)`` of the chosen and rejected replies give the logged
``reward_accuracy`` (fraction of pairs where the chosen one wins) and ``reward_margin``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["DpoObjective", "dpo_loss", "sequence_logps"]

IGNORE = -100


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-row sum of the log-probabilities of the tokens whose label is not -100 (next-token shift)."""
    logits, labels = logits[:, :-1], labels[:, 1:]
    mask = labels != IGNORE
    picked = torch.gather(logits.float().log_softmax(-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    return (picked * mask).sum(-1)


def dpo_loss(
    chosen: torch.Tensor,
    rejected: torch.Tensor,
    ref_chosen: torch.Tensor,
    ref_rejected: torch.Tensor,
    beta: float,
) -> tuple[torch.Tensor, dict[str, float]]:
    """The mean sigmoid DPO loss of a batch of pairs and its reward statistics."""
    logits = (chosen - ref_chosen) - (rejected - ref_rejected)
    loss = -F.logsigmoid(beta * logits).mean()
    reward_c = (beta * (chosen - ref_chosen)).detach()
    reward_r = (beta * (rejected - ref_rejected)).detach()
    return loss, {
        "reward_accuracy": float((reward_c > reward_r).float().mean()),
        "reward_margin": float((reward_c - reward_r).mean()),
        "reward_chosen": float(reward_c.mean()),
        "reward_rejected": float(reward_r.mean()),
    }


def _pad_cat(a: torch.Tensor, b: torch.Tensor, value: int) -> torch.Tensor:
    width = max(a.shape[1], b.shape[1])
    return torch.cat(
        [F.pad(a, (0, width - a.shape[1]), value=value), F.pad(b, (0, width - b.shape[1]), value=value)]
    )


class DpoObjective:
    """An ``Objective`` over batches of ``chosen_*``/``rejected_*`` ``input_ids`` and ``labels``."""

    def __init__(
        self,
        policy: nn.Module,
        *,
        beta: float,
        pad_id: int,
        reference: nn.Module | None = None,
        reference_free: bool = False,
    ) -> None:
        self.policy, self.reference = policy, reference
        self.beta, self.pad_id, self.reference_free = beta, pad_id, reference_free

    def __call__(
        self, forward: Callable[..., Any], batch: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, dict[str, float]]:
        ids = _pad_cat(batch["chosen_input_ids"], batch["rejected_input_ids"], self.pad_id)
        labels = _pad_cat(batch["chosen_labels"], batch["rejected_labels"], IGNORE)
        n = batch["chosen_input_ids"].shape[0]
        logps = sequence_logps(forward(input_ids=ids, use_cache=False).logits, labels)
        ref = self._reference_logps(ids, labels)
        loss, stats = dpo_loss(logps[:n], logps[n:], ref[:n], ref[n:], self.beta)
        return loss, stats

    def _reference_logps(self, ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.reference_free:
            return torch.zeros(ids.shape[0], device=ids.device)
        if self.reference is not None:
            model, scope = self.reference, contextlib.nullcontext()
        else:  # a peft model: the base is the policy with its adapter switched off
            model, scope = self.policy, self.policy.disable_adapter()
        with torch.no_grad(), scope:
            return sequence_logps(model(input_ids=ids, use_cache=False).logits, labels)
