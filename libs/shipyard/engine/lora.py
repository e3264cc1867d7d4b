"""Multi-LoRA: PEFT adapters loaded beside one base model, each token getting its own adapter's delta.

An adapter is a PEFT directory (``adapter_config.json`` + ``adapter_model.safetensors``, what the
finetune stage writes) whose LoRA pairs target the decoder projections ``q/k/v/o_proj`` and
``gate/up/down_proj``. ``B`` is stored pre-multiplied by the scale (``alpha / r``, or ``alpha / sqrt(r)``
with rsLoRA), so a projection's output for the tokens of one adapter gains ``(x @ A.T) @ B.T``.
Validation happens at load time, so a step never meets a bad adapter: the weights must fit the base
model's layer count and projection shapes, the rank must be <= ``max_lora_rank`` and at most
``max_loras`` adapters are loaded at once.
"""

from __future__ import annotations

import json
import math
import pathlib
import pickle
import re
from dataclasses import dataclass

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from shipyard.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted

__all__ = ["LoraAdapter", "LoraSet", "ProjectionShape"]

SUPPORTED_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
_KEY = re.compile(r"layers\.(\d+)\.(?:self_attn|mlp)\.(\w+)\.lora_([AB])(?:\.[\w-]+)?\.weight$")


@dataclass(frozen=True)
class ProjectionShape:
    in_features: int
    out_features: int


@dataclass(frozen=True)
class LoraAdapter:
    name: str
    rank: int
    # (layer, module) -> (A [r, in], B * scale [out, r]) on the runner's device and dtype
    weights: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]]


class LoraSet:
    """The adapters loaded on one runner; ``apply`` adds their deltas to a projection's output."""

    def __init__(
        self,
        *,
        num_layers: int,
        shapes: dict[str, ProjectionShape],
        max_loras: int,
        max_rank: int,
        device: torch.device,
        dtype: torch.dtype,
    ) -> None:
        self._num_layers, self._shapes = num_layers, shapes
        self._max_loras, self._max_rank = max_loras, max_rank
        self._device, self._dtype = device, dtype
        self._adapters: dict[str, LoraAdapter] = {}

    def names(self) -> list[str]:
        return sorted(self._adapters)

    def __contains__(self, name: object) -> bool:
        return name in self._adapters

    def get(self, name: str) -> LoraAdapter:
        if name not in self._adapters:
            raise NotFound(f"LoRA adapter {name!r} is not loaded (loaded: {self.names()})")
        return self._adapters[name]

    def load(self, name: str, path: str | pathlib.Path) -> LoraAdapter:
        if not name:
            raise InvalidArgument.field("name", "an adapter needs a non-empty name")
        if name in self._adapters:
            raise AlreadyExists(f"LoRA adapter {name!r} is already loaded; unload it first")
        if len(self._adapters) >= self._max_loras:
            raise ResourceExhausted(
                f"{len(self._adapters)} LoRA adapters are loaded and max_loras is {self._max_loras}; "
                "unload one first"
            )
        adapter = self._read(name, pathlib.Path(path))
        self._adapters[name] = adapter
        return adapter

    def unload(self, name: str) -> None:
        self.get(name)
        del self._adapters[name]

    def apply(
        self,
        layer: int,
        module: str,
        x: torch.Tensor,
        out: torch.Tensor,
        groups: dict[str, torch.Tensor | None],
    ) -> torch.Tensor:
        """``out`` plus each adapter's delta on its tokens; ``groups``: adapter -> token rows (None = all)."""
        for name, rows in groups.items():
            pair = self._adapters[name].weights.get((layer, module))
            if pair is None:
                continue
            lora_a, lora_b = pair
            if rows is None:
                out = out + (x @ lora_a.T) @ lora_b.T
            else:
                out = out.index_add(0, rows, (x[rows] @ lora_a.T) @ lora_b.T)
        return out

    def _read(self, name: str, path: pathlib.Path) -> LoraAdapter:
        config_file = path / "adapter_config.json"
        if not config_file.is_file():
            raise InvalidArgument.field(
                "path", f"{str(path)!r} is not a PEFT adapter directory (no adapter_config.json)"
            )
        try:
            config = json.loads(config_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidArgument.field("path", f"adapter_config.json is not valid JSON: {exc}") from exc
        _check_config(config)
        tensors = _read_tensors(path)
        pairs: dict[tuple[int, str], dict[str, torch.Tensor]] = {}
        for key, tensor in tensors.items():
            match = _KEY.search(key)
            if match is None or match.group(2) not in SUPPORTED_MODULES:
                raise InvalidArgument.field(
                    "path", f"adapter weight {key!r} is not a LoRA pair of {', '.join(SUPPORTED_MODULES)}"
                )
            pairs.setdefault((int(match.group(1)), match.group(2)), {})[match.group(3)] = tensor
        if not pairs:
            raise InvalidArgument.field("path", "the adapter holds no LoRA weights")
        alpha, rslora = float(config.get("lora_alpha", 8)), bool(config.get("use_rslora", False))
        weights: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = {}
        rank = 0
        for (layer, module), pair in sorted(pairs.items()):
            lora_a, lora_b = self._check_pair(layer, module, pair)
            r = lora_a.shape[0]
            rank = max(rank, r)
            scale = alpha / math.sqrt(r) if rslora else alpha / r
            weights[layer, module] = (
                lora_a.to(self._device, self._dtype),
                (lora_b.to(torch.float32) * scale).to(self._device, self._dtype),
            )
        return LoraAdapter(name, rank, weights)

    def _check_pair(
        self, layer: int, module: str, pair: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        where = f"layer {layer} {module}"
        if set(pair) != {"A", "B"}:
            raise InvalidArgument.field("path", f"{where} has lora_{''.join(pair)} without its pair")
        if layer >= self._num_layers:
            raise InvalidArgument.field(
                "path", f"{where}: the base model has {self._num_layers} layers; wrong base model?"
            )
        lora_a, lora_b = pair["A"], pair["B"]
        shape = self._shapes[module]
        r = lora_a.shape[0]
        if lora_a.shape != (r, shape.in_features) or lora_b.shape != (shape.out_features, r):
            raise InvalidArgument.field(
                "path",
                f"{where}: LoRA shapes A{tuple(lora_a.shape)} B{tuple(lora_b.shape)} do not fit the base "
                f"projection ({shape.in_features} -> {shape.out_features}); wrong base model?",
            )
        if r > self._max_rank:
            raise InvalidArgument.field(
                "max_lora_rank", f"{where} has rank {r} > max_lora_rank {self._max_rank}"
            )
        return lora_a, lora_b


def _check_config(config: dict[str, object]) -> None:
    if config.get("peft_type", "LORA") != "LORA":
        raise InvalidArgument.field("path", f"peft_type {config.get('peft_type')!r} is not LORA")
    unsupported = {
        "use_dora": "DoRA",
        "fan_in_fan_out": "fan_in_fan_out",
        "modules_to_save": "modules_to_save",
        "alpha_pattern": "per-module alpha_pattern",
        "lora_bias": "lora_bias",
    }
    for key, what in unsupported.items():
        if config.get(key):
            raise InvalidArgument.field(
                "path", f"the adapter uses {what}, which the inference engine does not support"
            )


def _read_tensors(path: pathlib.Path) -> dict[str, torch.Tensor]:
    safetensors_file, bin_file = path / "adapter_model.safetensors", path / "adapter_model.bin"
    try:
        if safetensors_file.is_file():
            return load_file(safetensors_file)
        if bin_file.is_file():
            return torch.load(bin_file, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, SafetensorError, pickle.UnpicklingError) as exc:
        raise InvalidArgument.field("path", f"cannot read the adapter weights: {exc}") from exc
    raise InvalidArgument.field(
        "path", f"{str(path)!r} holds no adapter_model.safetensors or adapter_model.bin"
    )
