"""Model presets: named Llama-family shapes, the ``LlamaConfig`` built from one, and its cost figures.

Every preset becomes a stock ``transformers.LlamaConfig``, so each later stage (finetune, eval,
inference) loads the trained model with ordinary HF code (``LlamaForCausalLM.from_pretrained``).
The vocabulary and special-token ids always come from the dataset's tokenizer, never from the preset.

Cost figures for MFU: ``parameter_count`` (exact, analytic), ``flops_per_token`` (training FLOPs per
token, PaLM appendix B) and ``peak_flops`` (a small table of hardware peaks).
"""

from __future__ import annotations

import difflib
import inspect
from dataclasses import dataclass
from typing import Any

from pydantic.alias_generators import to_snake
from transformers import LlamaConfig

from shipyard.errors import FieldViolation, InvalidArgument

__all__ = [
    "DEFAULT_CPU_PEAK_FLOPS",
    "PRESETS",
    "ModelPreset",
    "build_config",
    "flops_per_token",
    "get_preset",
    "parameter_count",
    "peak_flops",
]


@dataclass(frozen=True)
class ModelPreset:
    """The shape of a Llama-family decoder, independent of vocabulary."""

    name: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    max_position_embeddings: int
    rope_theta: float
    tie_word_embeddings: bool
    description: str


_PRESET_LIST = (
    ModelPreset(
        "llama-tiny", 256, 4, 4, 2, 688, 2048, 10_000.0, True,
        "~5M parameters with an 8k vocabulary (2.9M without embeddings); trains on a CPU in minutes.",
    ),
    ModelPreset(
        "llama-small", 512, 8, 8, 4, 1376, 2048, 10_000.0, True,
        "~27M parameters with an 8k vocabulary, ~40M with 32k (23M without embeddings).",
    ),
    ModelPreset(
        "llama-125m", 768, 12, 12, 12, 2048, 2048, 10_000.0, True,
        "GPT-3 Small width and depth: ~125M parameters with a 50k vocabulary (85M without embeddings).",
    ),
    ModelPreset(
        "llama-1b", 2048, 16, 32, 8, 8192, 8192, 500_000.0, True,
        "Llama-3.2-1B shape (GQA 32/8, tied embeddings): 1.24B parameters with a 128k vocabulary.",
    ),
    ModelPreset(
        "llama-7b", 4096, 32, 32, 32, 11008, 4096, 10_000.0, False,
        "Llama-2-7B shape: 6.74B parameters with a 32k vocabulary.",
    ),
    ModelPreset(
        "llama-13b", 5120, 40, 40, 40, 13824, 4096, 10_000.0, False,
        "Llama-2-13B shape: 13.0B parameters with a 32k vocabulary.",
    ),
)  # fmt: skip

PRESETS: dict[str, ModelPreset] = {p.name: p for p in _PRESET_LIST}

# What a spec may override: LlamaConfig's own keyword arguments, minus what the tokenizer decides.
# ``rope_theta`` is accepted too and folded into ``rope_parameters`` (how transformers 5 stores it).
_TOKENIZER_KEYS = frozenset({"vocab_size", "bos_token_id", "eos_token_id", "pad_token_id"})
_OVERRIDABLE = frozenset(
    name
    for name, p in inspect.signature(LlamaConfig.__init__).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY and name not in _TOKENIZER_KEYS
) | {"rope_theta"}

# Measured with a torch fp32 matmul on this project's CI/dev machine; pass the figure of yours.
DEFAULT_CPU_PEAK_FLOPS = 180e9

# Dense (no sparsity) peaks from NVIDIA's data sheets. Keys are matched against the device name in
# order, so the more specific spellings ("h100 pcie") come before the general ones ("h100").
_GPU_PEAKS: tuple[tuple[str, dict[str, float]], ...] = (
    ("h200", {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12}),
    ("h100 pcie", {"bf16": 756e12, "fp16": 756e12, "fp32": 51e12}),
    ("h100", {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12}),  # SXM
    ("a100", {"bf16": 312e12, "fp16": 312e12, "fp32": 19.5e12}),
)


def get_preset(name: str, *, field: str = "spec.model") -> ModelPreset:
    """The preset called ``name``; an unknown name is an ``InvalidArgument`` on ``field`` with a hint."""
    preset = PRESETS.get(name)
    if preset is not None:
        return preset
    close = difflib.get_close_matches(str(name), PRESETS, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise InvalidArgument.field(
        field, f"unknown model preset {name!r} (valid presets: {', '.join(PRESETS)}){hint}"
    )


def build_config(
    preset: ModelPreset | str,
    *,
    vocab_size: int,
    seq_len: int,
    bos_id: int | None = None,
    eos_id: int | None = None,
    pad_id: int | None = None,
    overrides: dict[str, Any] | None = None,
    field: str = "spec.modelOverrides",
) -> LlamaConfig:
    """The ``LlamaConfig`` of ``preset`` for a tokenizer of ``vocab_size`` and sequences of ``seq_len``.

    ``overrides`` maps LlamaConfig fields (snake_case or camelCase, as a YAML spec writes them) to
    values, e.g. ``{"numHiddenLayers": 2}``; an unknown key, a tokenizer-owned key or an inconsistent
    shape is an ``InvalidArgument`` on ``<field>.<key>``. ``max_position_embeddings`` is raised to
    ``seq_len`` when the preset's is shorter.
    """
    if isinstance(preset, str):
        preset = get_preset(preset)
    violations: list[FieldViolation] = []
    if vocab_size < 1:
        violations.append(FieldViolation("vocab_size", f"must be >= 1, got {vocab_size}"))
    if seq_len < 1:
        violations.append(FieldViolation("seq_len", f"must be >= 1, got {seq_len}"))
    for name, token in (("bos_id", bos_id), ("eos_id", eos_id), ("pad_id", pad_id)):
        if token is not None and not 0 <= token < vocab_size:
            violations.append(FieldViolation(name, f"{token} is not in [0, vocab_size={vocab_size})"))
    if violations:
        raise InvalidArgument("invalid model configuration", violations=violations)

    values: dict[str, Any] = {
        "hidden_size": preset.hidden_size,
        "num_hidden_layers": preset.num_layers,
        "num_attention_heads": preset.num_heads,
        "num_key_value_heads": preset.num_kv_heads,
        "intermediate_size": preset.intermediate_size,
        "max_position_embeddings": max(preset.max_position_embeddings, seq_len),
        "rope_theta": preset.rope_theta,
        "tie_word_embeddings": preset.tie_word_embeddings,
        "rms_norm_eps": 1e-5,
        "initializer_range": 0.02,
    }
    overridden: dict[str, str] = {}  # LlamaConfig key -> the spec field that set it
    for key, value in (overrides or {}).items():
        name = to_snake(str(key))
        if name in _TOKENIZER_KEYS:
            raise InvalidArgument.field(f"{field}.{key}", "is set by the dataset's tokenizer, not the spec")
        if name not in _OVERRIDABLE:
            close = difflib.get_close_matches(name, _OVERRIDABLE, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise InvalidArgument.field(f"{field}.{key}", f"not a LlamaConfig field{hint}")
        values[name] = value
        overridden[name] = f"{field}.{key}"
    _check_shape(values, overridden, preset.name, field)
    if values["max_position_embeddings"] < seq_len:
        raise InvalidArgument.field(
            overridden["max_position_embeddings"],
            f"max_position_embeddings {values['max_position_embeddings']} is shorter than seq_len {seq_len}",
        )
    rope_theta = values.pop("rope_theta")
    values.setdefault("rope_parameters", {"rope_type": "default", "rope_theta": float(rope_theta)})
    return LlamaConfig(
        vocab_size=vocab_size,
        bos_token_id=bos_id,
        eos_token_id=eos_id,
        pad_token_id=pad_id,
        architectures=["LlamaForCausalLM"],
        **values,
    )


def _check_shape(values: dict[str, Any], overridden: dict[str, str], preset: str, field: str) -> None:
    """Reject shapes LlamaForCausalLM cannot build, naming the override that caused it."""

    def fail(keys: tuple[str, ...], reason: str) -> InvalidArgument:
        # Presets are consistent on their own, so a bad shape always comes from some override.
        blame = next((overridden[k] for k in keys if k in overridden), field)
        return InvalidArgument.field(blame, f"{reason} (preset {preset})")

    for key in ("hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                "intermediate_size", "max_position_embeddings"):  # fmt: skip
        value = values[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise fail((key,), f"{key} must be a positive integer, got {value!r}")
    hidden, heads, kv = values["hidden_size"], values["num_attention_heads"], values["num_key_value_heads"]
    if values.get("head_dim") is None and hidden % heads:
        raise fail(
            ("num_attention_heads", "hidden_size"),
            f"hidden_size {hidden} is not divisible by num_attention_heads {heads}",
        )
    if heads % kv:
        raise fail(
            ("num_key_value_heads", "num_attention_heads"),
            f"num_attention_heads {heads} is not a multiple of num_key_value_heads {kv}",
        )
    theta = values["rope_theta"]
    if not isinstance(theta, int | float) or isinstance(theta, bool) or theta <= 0:
        raise fail(("rope_theta",), f"rope_theta must be a positive number, got {theta!r}")


def parameter_count(config: LlamaConfig) -> int:
    """The exact number of parameters of ``LlamaForCausalLM(config)``, without building it."""
    return _non_embedding_params(config) + _embedding_params(config)


def _embedding_params(config: LlamaConfig) -> int:
    table = config.vocab_size * config.hidden_size
    return table if config.tie_word_embeddings else 2 * table


def _non_embedding_params(config: LlamaConfig) -> int:
    h, inter = config.hidden_size, config.intermediate_size
    head_dim = getattr(config, "head_dim", None) or h // config.num_attention_heads
    q_dim = config.num_attention_heads * head_dim
    kv_dim = (config.num_key_value_heads or config.num_attention_heads) * head_dim
    attention = h * q_dim + 2 * h * kv_dim + q_dim * h
    if config.attention_bias:
        attention += q_dim + 2 * kv_dim + h
    mlp = 3 * h * inter + (2 * inter + h if config.mlp_bias else 0)
    per_layer = attention + mlp + 2 * h  # + the two RMSNorm weights
    return config.num_hidden_layers * per_layer + h  # + the final norm


def flops_per_token(config: LlamaConfig, seq_len: int) -> float:
    """Training FLOPs (forward + backward) per token, the numerator of MFU.

    PaLM (Chowdhery et al., 2022), appendix B: ``6 * N + 12 * n_layers * seq_len * hidden``, where
    ``6 * N`` is the matmuls through the weights (2 FLOPs per multiply-add, x3 for forward, backward
    to activations and backward to weights) and the second term is attention's ``QK^T`` and ``AV``
    (``2 * 2 * seq_len * hidden`` per layer forward, x3), counted over the full ``seq_len x seq_len``
    score matrix as PaLM and Megatron do, so our MFU compares with published figures. ``N`` is every
    matmul weight: the parameters without the input embedding (a gather, not a matmul) plus the
    output projection, which costs ``vocab x hidden`` per token whether or not it is tied.
    """
    if seq_len < 1:
        raise InvalidArgument.field("seq_len", f"must be >= 1, got {seq_len}")
    matmul_params = _non_embedding_params(config) + config.vocab_size * config.hidden_size
    attention = 12 * config.num_hidden_layers * seq_len * config.hidden_size
    return float(6 * matmul_params + attention)


def peak_flops(device: str, precision: str, *, cpu_flops: float = DEFAULT_CPU_PEAK_FLOPS) -> float | None:
    """Peak dense FLOP/s of one ``device`` at ``precision`` (``fp32``/``bf16``/``fp16``), or None if unknown.

    ``device`` is ``"cpu"`` or a CUDA device name as ``torch.cuda.get_device_name()`` reports it
    (``"NVIDIA H100 80GB HBM3"``). A CPU has no published peak, so its figure is ``cpu_flops`` (fp32
    only), which the caller sets from configuration for the machine at hand.
    """
    name = device.lower()
    if name == "cpu" or name.startswith("cpu"):
        return cpu_flops if precision == "fp32" else None
    for key, peaks in _GPU_PEAKS:
        if key in name:
            return peaks.get(precision)
    return None
