"""``load_runner``: a Llama-family model loaded offline, its paged KV cache allocated, ready for steps.

The runner is what the engine's step loop calls (the ``ModelRunner`` protocol in ``engine/batch.py``):
``execute`` computes one step's chunks over the paged cache and returns next-token logits; adapters are
loaded and unloaded at run time. The KV cache is sized once from the configured budget, in whole blocks
(``kv_bytes_per_block``), and capped at what ``max_num_seqs`` full-length sequences could ever use.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from shipyard.config import InferenceConfig
from shipyard.engine.batch import ModelInput
from shipyard.engine.device import DevicePlacement, kv_cache_budget_bytes, resolve_placement
from shipyard.engine.kv_cache import PagedKVCache, kv_bytes_per_block
from shipyard.engine.llama_forward import PagedDecoder, plan_step
from shipyard.engine.lora import LoraSet, ProjectionShape
from shipyard.engine.quantization import quantize_linear_layers
from shipyard.errors import InvalidArgument, ResourceExhausted
from shipyard.models.local import LocalModel, load_pretrained

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = ["SUPPORTED_ARCHITECTURES", "PagedModelRunner", "load_runner"]

# model_type -> architecture: decoders with Llama's layer shape (RMSNorm, RoPE, GQA, gated MLP).
SUPPORTED_ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
}


class PagedModelRunner:
    """One model on one device with its paged KV cache and LoRA adapters."""

    def __init__(
        self, model: torch.nn.Module, config: InferenceConfig, placement: DevicePlacement, max_model_len: int
    ) -> None:
        hf = model.config
        self.placement = placement
        self.vocab_size: int = hf.vocab_size
        self.max_model_len = max_model_len
        self.block_size = config.block_size
        layers = model.model.layers
        num_kv_heads = hf.num_key_value_heads
        head_dim = getattr(hf, "head_dim", None) or hf.hidden_size // hf.num_attention_heads
        int8_kv = config.kv_cache_dtype == "int8"
        self.bytes_per_block = kv_bytes_per_block(
            num_layers=len(layers),
            num_kv_heads=num_kv_heads,
            head_dim=head_dim,
            block_size=self.block_size,
            dtype=placement.dtype,
            int8=int8_kv,
        )
        self.num_blocks = _num_blocks(config, placement, self.bytes_per_block, max_model_len)
        self.cache = PagedKVCache(
            num_layers=len(layers),
            num_kv_heads=num_kv_heads,
            head_dim=head_dim,
            block_size=self.block_size,
            num_blocks=self.num_blocks,
            dtype=placement.dtype,
            device=placement.device,
            int8=int8_kv,
        )
        self.weight_bytes_saved = 0
        if config.quantization == "int8":
            before, after = quantize_linear_layers(layers)
            self.weight_bytes_saved = before - after
        attn, mlp = layers[0].self_attn, layers[0].mlp
        shapes = {
            name: ProjectionShape(module.in_features, module.out_features)
            for name, module in (
                ("q_proj", attn.q_proj),
                ("k_proj", attn.k_proj),
                ("v_proj", attn.v_proj),
                ("o_proj", attn.o_proj),
                ("gate_proj", mlp.gate_proj),
                ("up_proj", mlp.up_proj),
                ("down_proj", mlp.down_proj),
            )
        }
        self.loras = LoraSet(
            num_layers=len(layers),
            shapes=shapes,
            max_loras=config.max_loras,
            max_rank=config.max_lora_rank,
            device=placement.device,
            dtype=placement.dtype,
        )
        self.model = model
        self._decoder = PagedDecoder(model, self.cache, self.loras, max_num_seqs=config.max_num_seqs)
        # Decoding sequences' K/V kept contiguous beside the cache (None with an int8 cache).
        self.decode_view = self._decoder.view

    def execute(self, batch: ModelInput) -> torch.Tensor:
        """float32 logits, one row per ``chunk.num_logit_rows``, in chunk order (``batch.py``)."""
        for index, chunk in enumerate(batch.chunks):
            if chunk.adapter is not None and chunk.adapter not in self.loras:
                raise InvalidArgument.field(
                    f"chunks[{index}].adapter", f"LoRA adapter {chunk.adapter!r} is not loaded"
                )
        plan = plan_step(
            batch,
            block_size=self.block_size,
            num_blocks=self.num_blocks,
            vocab_size=self.vocab_size,
            max_model_len=self.max_model_len,
            device=self.placement.device,
        )
        return self._decoder.forward(plan)

    def load_adapter(self, name: str, path: str) -> None:
        self.loras.load(name, path)

    def unload_adapter(self, name: str) -> None:
        self.loras.unload(name)

    def adapters(self) -> list[str]:
        return self.loras.names()


def load_runner(
    model: LocalModel, config: InferenceConfig
) -> tuple[PagedModelRunner, PreTrainedTokenizerBase]:
    """Load ``model`` offline onto the configured device and allocate its KV cache (see module doc)."""
    from transformers import AutoConfig

    hf_config = AutoConfig.from_pretrained(model.directory, **model.from_pretrained_kwargs())
    model_type = getattr(hf_config, "model_type", None)
    if model_type not in SUPPORTED_ARCHITECTURES:
        raise InvalidArgument.field(
            "model",
            f"{model.name!r} is a {model_type!r} model; the inference engine runs "
            f"{', '.join(sorted(SUPPORTED_ARCHITECTURES.values()))}",
        )
    max_model_len = _max_model_len(hf_config, config)
    placement = resolve_placement(config)
    hf_model, tokenizer = load_pretrained(model, dtype=placement.dtype, device=str(placement.device))
    return PagedModelRunner(hf_model, config, placement, max_model_len), tokenizer


def _max_model_len(hf_config: object, config: InferenceConfig) -> int:
    limit = int(getattr(hf_config, "max_position_embeddings", 2048))
    # Sliding-window attention differs from full attention only past the window: stay inside it.
    if getattr(hf_config, "sliding_window", None) and getattr(hf_config, "use_sliding_window", True):
        limit = min(limit, int(hf_config.sliding_window))  # type: ignore[attr-defined]
    if config.max_model_len is None:
        return limit
    if config.max_model_len > limit:
        raise InvalidArgument.field(
            "max_model_len", f"{config.max_model_len} exceeds the model's context window of {limit}"
        )
    return config.max_model_len


def _num_blocks(
    config: InferenceConfig, placement: DevicePlacement, per_block: int, max_model_len: int
) -> int:
    budget = kv_cache_budget_bytes(config, placement.device)
    if budget < per_block:
        raise InvalidArgument.field(
            "kv_cache_memory", f"{budget} bytes hold no KV block; one block needs {per_block} bytes"
        )
    useful = config.max_num_seqs * math.ceil(max_model_len / config.block_size)
    num_blocks = min(budget // per_block, useful)
    if placement.device.type == "cuda":
        free = torch.cuda.mem_get_info(placement.device)[0]
        if num_blocks * per_block > free:
            raise ResourceExhausted(
                f"the KV cache needs {num_blocks * per_block} bytes but the GPU has {free} free; "
                "lower kv_cache_memory"
            )
    return num_blocks
