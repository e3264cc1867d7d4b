"""Peak-memory accounting of a (Q)LoRA/full finetune: static parts from the architecture, activations
calibrated on a measured run, then the same formula applied to a 7B Llama.

Static parts, per parameter: 4-bit NF4 base weights with double quantization = 0.5 byte + one 8-bit
absmax per 64 weights + one fp32 per 256 blocks (~0.516 B); unquantized tensors (embeddings, norms, an
untied head) in the compute dtype; trainable parameters x4 copies (weight, gradient, Adam m and v) in
fp32. Activations are what the measured peak holds beyond the process baseline and the static parts;
per token they scale with layers x (hidden + intermediate) (every saved activation of a decoder layer is
a multiple of one of the two widths) plus the logits (vocab per token, fp32).

With gradient checkpointing only each decoder layer's input is kept (tokens x layers x hidden), and
one layer's activations at a time are rebuilt in the backward pass; the per-unit figure calibrated on
a run without checkpointing gives that one layer's share, so a checkpointed run is predicted, not
fitted (and the benchmark prints the prediction next to the measured checkpointed run).
"""

from __future__ import annotations

from dataclasses import dataclass

MB = 1 << 20


@dataclass(frozen=True)
class Arch:
    name: str
    layers: int
    hidden: int
    intermediate: int
    kv_hidden: int
    vocab: int
    tied: bool

    def linear_shapes(self) -> list[tuple[int, int]]:
        h, i, kv = self.hidden, self.intermediate, self.kv_hidden
        return [(h, h), (h, kv), (h, kv), (h, h), (h, i), (h, i), (i, h)] * self.layers

    @property
    def linear_params(self) -> int:
        return sum(a * b for a, b in self.linear_shapes())

    @property
    def other_params(self) -> int:
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return embeddings + self.hidden * (2 * self.layers + 1)

    def lora_params(self, r: int) -> int:
        return sum(r * (a + b) for a, b in self.linear_shapes())

    def activation_units(self, tokens: int) -> float:
        return tokens * self.layers * (self.hidden + self.intermediate)


SMOLLM2_135M = Arch("SmolLM2-135M", 30, 576, 1536, 192, 49152, tied=True)
LLAMA_7B = Arch("Llama-2-7B", 32, 4096, 11008, 4096, 32000, tied=False)
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)


def static_bytes(arch: Arch, method: str, *, r: int = 8, dtype_bytes: int = 4) -> dict[str, float]:
    if method == "full":
        params = arch.linear_params + arch.other_params
        return {"weights": params * 4, "trainable (grad+adam)": params * 12}
    weights = arch.linear_params * (NF4_BYTES if method == "qlora" else dtype_bytes)
    return {
        "weights": weights + arch.other_params * dtype_bytes,
        "trainable (lora w+grad+adam)": arch.lora_params(r) * 16,
    }


def activation_bytes_per_unit(
    measured_peak: float, baseline: float, static: float, arch: Arch, tokens: int, logits_bytes: float
) -> float:
    """Calibrate: bytes per (token x layer x width) that the measured run held for activations."""
    return max(measured_peak - baseline - static - logits_bytes, 0.0) / arch.activation_units(tokens)


def estimate(
    arch: Arch,
    method: str,
    per_unit: float,
    tokens: int,
    *,
    dtype_bytes: int,
    logits_dtype_bytes: int = 4,
    checkpointing: bool = False,
) -> dict[str, float]:
    parts = static_bytes(arch, method, dtype_bytes=dtype_bytes)
    if checkpointing:
        one_layer = per_unit * tokens * (arch.hidden + arch.intermediate) * dtype_bytes / 4
        parts["activations"] = tokens * arch.layers * arch.hidden * dtype_bytes + one_layer
    else:
        parts["activations"] = per_unit * arch.activation_units(tokens) * dtype_bytes / 4
    parts["logits"] = tokens * arch.vocab * logits_dtype_bytes * 3  # logits, log-softmax, its gradient
    return parts
