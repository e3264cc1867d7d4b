"""Merging a LoRA adapter into its base model, streamed one safetensors shard at a time.

For each adapted linear layer ``W' = W + (alpha / r) * B @ A`` (``alpha / sqrt(r)`` with rsLoRA), the
same update peft's ``merge_and_unload`` applies. Instead of loading the whole base model, the base's
safetensors shards are read one at a time, the adapted weights in that shard are updated (in fp32, then
cast back to the shard's dtype) and the shard is written out under the same name with the same index,
so peak memory is one shard plus the adapter, never the whole model. The config, generation config and
index are copied as they are: the merged model is a plain HF model of the base architecture.
"""

from __future__ import annotations

import json
import pathlib
import shutil

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from shipyard.errors import FailedPrecondition

__all__ = ["merge_adapter"]

_ADAPTER_PREFIX = "base_model.model."


def merge_adapter(base_dir: pathlib.Path, adapter_dir: pathlib.Path, out_dir: pathlib.Path) -> list[str]:
    """Write ``base_dir`` with ``adapter_dir`` merged into ``out_dir``; returns the merged weight names."""
    config = json.loads((adapter_dir / "adapter_config.json").read_text())
    if config.get("use_dora") or config.get("modules_to_save") or config.get("fan_in_fan_out"):
        raise FailedPrecondition(
            f"adapter {adapter_dir}: DoRA, modules_to_save and fan_in_fan_out cannot be merged"
        )
    r, alpha = int(config["r"]), float(config["lora_alpha"])
    scale = alpha / (r**0.5) if config.get("use_rslora") else alpha / r
    pairs = _lora_pairs(load_file(str(adapter_dir / "adapter_model.safetensors")))
    shards = sorted(base_dir.glob("*.safetensors"))
    if not shards:
        raise FailedPrecondition(f"base model {base_dir} has no safetensors weights to merge into")
    out_dir.mkdir(parents=True, exist_ok=True)
    for path in base_dir.iterdir():
        if path.is_file() and path.suffix == ".json" and path.name not in ("adapter_config.json",):
            shutil.copy(path, out_dir / path.name)
    merged: list[str] = []
    for shard in shards:
        with safe_open(str(shard), framework="pt") as f:
            metadata = f.metadata()
            tensors = {key: f.get_tensor(key) for key in f.keys()}  # noqa: SIM118 (safe_open has no iter)
        for key, weight in tensors.items():
            pair = pairs.pop(key, None)
            if pair is not None:
                a, b = pair
                tensors[key] = (weight.float() + scale * (b.float() @ a.float())).to(weight.dtype)
                merged.append(key)
        save_file(tensors, str(out_dir / shard.name), metadata=metadata or {"format": "pt"})
        del tensors
    if pairs:
        raise FailedPrecondition(f"adapter weights for {sorted(pairs)[:3]} have no matching base weight")
    return merged


def _lora_pairs(adapter: dict[str, torch.Tensor]) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Base weight name -> (A, B) from peft's saved names (``...q_proj.lora_A.weight``)."""
    pairs: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for key, a in adapter.items():
        if ".lora_A." not in key:
            continue
        module = key.split(".lora_A.")[0].removeprefix(_ADAPTER_PREFIX)
        pairs[f"{module}.weight"] = (a, adapter[key.replace(".lora_A.", ".lora_B.")])
    return pairs
