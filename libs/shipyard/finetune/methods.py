"""The model a finetune trains: the base model wrapped for its method (full, LoRA, QLoRA, DPO).

* ``full``: the base model in fp32, every weight trainable.
* ``lora``: the base model frozen, ``peft`` LoRA adapters on ``targetModules`` (default: every linear
  projection of the decoder layers, i.e. all ``nn.Linear`` leaves but the output head).
* ``qlora``: the base weights stored as 4-bit NF4 by ``bitsandbytes`` (its CPU backend works here) and
  computed in fp32 (bf16 on GPU), then LoRA on top; peft's ``prepare_model_for_kbit_training`` keeps
  the norms in fp32.
* ``dpo``: LoRA (or full, with ``adapter: none``) trained with the DPO objective (``dpo.py``).

``gradientCheckpointing`` (default on for ``qlora``) makes every decoder layer recompute its
activations in the backward pass (``enable_checkpointing``), for any method.

``check_target_modules`` validates ``lora.targetModules`` against the module names of the base
architecture built on the ``meta`` device (no weights are read), so a typo fails before any compute.
"""

from __future__ import annotations

import pathlib
from typing import Any

import torch
from torch import nn

from shipyard.errors import InvalidArgument
from shipyard.finetune.spec import FinetuneMethod, FinetuneSpec
from shipyard.models.local import LocalModel

__all__ = [
    "CHECKPOINTING_KWARGS",
    "build_model",
    "check_target_modules",
    "enable_checkpointing",
    "linear_module_names",
    "load_config",
    "meta_model",
    "target_modules",
]

TARGETS_FIELD = "spec.finetune.lora.targetModules"
# Non-reentrant checkpointing (torch's recommended mode) gives the adapters inside a checkpointed layer
# their gradients even when the layer's input does not require grad (a frozen embedding), so the
# ``enable_input_require_grads`` hook the reentrant mode needs is not installed; it also works under DDP.
CHECKPOINTING_KWARGS: dict[str, Any] = {"use_reentrant": False}


def load_config(model: LocalModel) -> Any:
    from transformers import AutoConfig

    return AutoConfig.from_pretrained(model.directory, **model.from_pretrained_kwargs())


def linear_module_names(model: nn.Module) -> list[str]:
    """The distinct leaf names of the linear layers LoRA can adapt (the output head excluded)."""
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    names = {
        name.rsplit(".", 1)[-1]
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear) and module is not head
    }
    return sorted(names)


def meta_model(config: Any) -> nn.Module:
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        return AutoModelForCausalLM.from_config(config)


def check_target_modules(config: Any, ft: FinetuneSpec) -> list[str]:
    """The modules LoRA will adapt; ``InvalidArgument`` on ``targetModules`` naming unknown ones."""
    valid = linear_module_names(meta_model(config))
    wanted = ft.lora.target_modules
    if wanted is None:
        return valid
    unknown = [m for m in wanted if m not in valid]
    if unknown:
        raise InvalidArgument.field(
            TARGETS_FIELD,
            f"{', '.join(unknown)} {'is' if len(unknown) == 1 else 'are'} not linear module(s) of "
            f"{getattr(config, 'model_type', 'the model')}; valid: {', '.join(valid)}",
        )
    return list(wanted)


def target_modules(model: nn.Module, ft: FinetuneSpec) -> list[str]:
    return list(ft.lora.target_modules) if ft.lora.target_modules else linear_module_names(model)


def enable_checkpointing(model: nn.Module) -> None:
    """Turn on gradient checkpointing of every decoder layer of an HF model (``model.train()`` needed)."""
    model.activation_checkpointing_enable(activation_checkpointing_kwargs=CHECKPOINTING_KWARGS)


def _load_base(model: LocalModel, ft: FinetuneSpec, device: torch.device) -> nn.Module:
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = model.from_pretrained_kwargs()
    compute = torch.bfloat16 if device.type == "cuda" else torch.float32
    if ft.method is FinetuneMethod.QLORA:
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=compute,
        )
        kwargs["device_map"] = {"": device.index or 0} if device.type == "cuda" else "cpu"
    return AutoModelForCausalLM.from_pretrained(model.directory, dtype=torch.float32, **kwargs)


def build_model(
    model: LocalModel,
    ft: FinetuneSpec,
    *,
    device: torch.device,
    adapter_dir: pathlib.Path | None = None,
) -> nn.Module:
    """The trainable model of ``ft.method``; ``adapter_dir`` (a checkpoint's adapter) resumes a LoRA."""
    base = _load_base(model, ft, device)
    if ft.method is FinetuneMethod.QLORA:
        from peft import prepare_model_for_kbit_training

        # Only the 4-bit preparation (norms in fp32, base frozen); checkpointing is switched on below
        # the same way for every method.
        base = prepare_model_for_kbit_training(base, use_gradient_checkpointing=False)
    if ft.checkpoints_activations:
        enable_checkpointing(base)
    if not ft.uses_lora:
        return base
    from peft import LoraConfig, PeftModel, get_peft_model

    if adapter_dir is not None:
        return PeftModel.from_pretrained(base, str(adapter_dir), is_trainable=True)
    config = LoraConfig(
        r=ft.lora.r,
        lora_alpha=ft.lora.alpha,
        lora_dropout=ft.lora.dropout,
        target_modules=target_modules(base, ft),
        task_type="CAUSAL_LM",
    )
    return get_peft_model(base, config)
