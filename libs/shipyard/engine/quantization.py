"""Weight-only int8 quantization of a decoder's linear layers (attention and MLP projections).

Each weight row (output channel) is quantized symmetrically: ``w ~= q * s`` with ``q`` int8 and one scale
per row, so ``x @ w.T == (x @ q.T) * s``. Embeddings and ``lm_head`` stay in the compute dtype: in small
models they are usually tied, and quantizing one tied copy would add memory instead of saving it.

The matmul: ``torch.ops.aten._weight_int8pack_mm`` is torch's int8-weight kernel, but on the CPUs we
measured (torch 2.13, no AVX512-VNNI) it is 10-40x slower than converting the int8 weight to the compute
dtype inside the matmul, so CPU dequantizes per matmul (memory saved, speed unchanged) and the kernel is
used on CUDA, where it is fast. ``use_kernel`` overrides the choice (the benchmark measures both).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["Int8Linear", "quantize_linear_layers"]

_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class Int8Linear(nn.Module):
    """A ``nn.Linear`` replacement holding an int8 weight and one scale per output channel."""

    def __init__(self, linear: nn.Linear, *, use_kernel: bool | None = None) -> None:
        super().__init__()
        weight = linear.weight.detach().to(torch.float32)
        scales = weight.abs().amax(dim=1).clamp(min=1e-8) / 127.0
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.register_buffer("qweight", torch.round(weight / scales[:, None]).clamp(-127, 127).to(torch.int8))
        self.register_buffer("scales", scales.to(linear.weight.dtype))
        self.bias = linear.bias
        self.use_kernel = linear.weight.device.type == "cuda" if use_kernel is None else use_kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, self.in_features)
        if self.use_kernel:
            out = torch.ops.aten._weight_int8pack_mm(flat.contiguous(), self.qweight, self.scales)
        else:
            out = (flat @ self.qweight.to(flat.dtype).T) * self.scales
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(*x.shape[:-1], self.out_features)


def quantize_linear_layers(layers: nn.ModuleList, *, use_kernel: bool | None = None) -> tuple[int, int]:
    """Replace the projections of every decoder layer in place; returns (bytes before, bytes after)."""
    before = after = 0
    for layer in layers:
        for parent in (layer.self_attn, layer.mlp):
            for name in _TARGETS:
                linear = getattr(parent, name, None)
                if not isinstance(linear, nn.Linear):
                    continue
                quantized = Int8Linear(linear, use_kernel=use_kernel)
                before += linear.weight.nbytes
                after += quantized.qweight.nbytes + quantized.scales.nbytes
                setattr(parent, name, quantized)
    return before, after
