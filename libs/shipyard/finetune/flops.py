"""Training FLOPs per token of a finetune: the numerator of its MFU, by method.

Pretraining counts PaLM's ``6N + 12 L s h`` (``shipyard.training.presets.flops_per_token``): for every
matmul weight 2 FLOPs forward, 2 for the gradient of its input and 2 for the gradient of the weight.
A finetune does not always do all three, so counting ``6N`` would overstate its work (a LoRA run
could report more than 100% of the machine):

* ``N`` is every matmul weight of the base (each ``nn.Linear``: the decoder projections and the output
  head, tied or not), ``A = 4 L s h`` the forward of attention's ``QK^T`` and ``AV`` (no weights),
  ``N_lora = sum r x (in + out)`` over the adapted linears, ``Nd`` the decoder's share of ``N``.
* ``full``: ``6N + 3A``, PaLM's count.
* ``lora``/``qlora``: the base is frozen, so the backward computes input gradients through it but no
  weight gradients: ``2N`` forward + ``2N`` backward, plus ``6 N_lora`` for the adapters (which do
  all three) and ``3A`` (attention's backward still needs both operands' gradients). The frozen
  first layer's input gradient, which nothing needs, is counted anyway (< 1/L of ``2N``). QLoRA's
  4-bit dequantization is not a matmul and is not counted.
* gradient checkpointing: every decoder layer runs its forward once more in the backward pass
  (``2 Nd + 2 N_lora + A``; the output head is not recomputed). Strictly that recompute is hardware,
  not model, FLOPs (PaLM's HFU vs MFU); it is counted because it is work the hardware does for this
  method, so the figure tells how busy the device is rather than penalising the memory saving.
* ``dpo`` additionally runs the reference model's forward on every token (``2N + A``), unless
  ``referenceFree``; with LoRA that is the base with the adapter disabled.

``s`` is the mean row length of the training data: a finetune's rows are as long as their examples,
not a fixed sequence length, and each token attends over its own row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from torch import nn

from shipyard.errors import InvalidArgument
from shipyard.finetune.spec import FinetuneMethod, FinetuneSpec

__all__ = ["MatmulWeights", "finetune_flops_per_token", "matmul_weights"]


@dataclass(frozen=True)
class MatmulWeights:
    """The matmul weights that set a model's FLOPs: the whole base, its decoder part, the adapters."""

    base: int  # N: every nn.Linear weight, the output head included
    decoder: int  # Nd: the linears that gradient checkpointing recomputes (N minus the head)
    lora: int  # N_lora: r x (in + out) per adapted linear; 0 without LoRA
    layers: int
    hidden: int


def matmul_weights(config: Any, ft: FinetuneSpec) -> MatmulWeights:
    """Count ``config``'s matmul weights on a ``meta`` model (no weights are read)."""
    from shipyard.finetune.methods import linear_module_names, meta_model

    model = meta_model(config)
    head = model.get_output_embeddings()
    targets = set(ft.lora.target_modules or linear_module_names(model)) if ft.uses_lora else set()
    base = decoder = lora = 0
    for name, module in model.named_modules():
        if not isinstance(module, nn.Linear):
            continue
        weights = module.in_features * module.out_features
        base += weights
        if module is not head:
            decoder += weights
            if name.rsplit(".", 1)[-1] in targets:
                lora += ft.lora.r * (module.in_features + module.out_features)
    return MatmulWeights(base, decoder, lora, config.num_hidden_layers, config.hidden_size)


def finetune_flops_per_token(w: MatmulWeights, ft: FinetuneSpec, seq_len: float) -> float:
    """Training FLOPs per (real) token of a finetune of ``ft.method`` over rows of ``seq_len`` tokens."""
    if seq_len <= 0:
        raise InvalidArgument.field("seq_len", f"must be > 0, got {seq_len}")
    attention = 4 * w.layers * seq_len * w.hidden
    # LoRA: the frozen base gets forward + input gradients only; full: PaLM's forward + both gradients.
    flops = 4 * w.base + 6 * w.lora + 3 * attention if ft.uses_lora else 6 * w.base + 3 * attention
    if ft.checkpoints_activations:
        flops += 2 * w.decoder + 2 * w.lora + attention
    if ft.method is FinetuneMethod.DPO and not ft.dpo.reference_free:
        flops += 2 * w.base + attention
    return float(flops)
