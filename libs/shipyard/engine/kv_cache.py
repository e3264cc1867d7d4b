"""The paged KV cache: one preallocated tensor of fixed-size blocks, read and written by slot.

Layout: ``[layers, 2 (K/V), num_blocks, block_size, kv_heads, head_dim]``, so one layer's K (or V) is a
contiguous ``[num_blocks * block_size, kv_heads, head_dim]`` table and position ``p`` of a sequence lives
at slot ``block_table[p // block_size] * block_size + p % block_size``. With ``int8`` the values are
stored quantized symmetrically per token and head, with a float32 scale beside each (half the memory of
bfloat16, a quarter of float32, for ``4 / head_dim`` extra bytes).

The tensor is allocated uninitialised (on CPU its pages are committed only as the cache fills): readers
only ever gather slots that were written, padding included (the runner pads with a sequence's own last
slot), so NaN garbage can never reach a masked-out product (0 * NaN is NaN).
"""

from __future__ import annotations

import torch

__all__ = ["PagedKVCache", "kv_bytes_per_block"]

_SCALE_DTYPE = torch.float32


def kv_bytes_per_block(
    *, num_layers: int, num_kv_heads: int, head_dim: int, block_size: int, dtype: torch.dtype, int8: bool
) -> int:
    """Bytes of one block over all layers: ``layers x 2 x block_size x kv_heads x (head_dim x b + s)``."""
    per_head = head_dim * (1 if int8 else dtype.itemsize) + (_SCALE_DTYPE.itemsize if int8 else 0)
    return num_layers * 2 * block_size * num_kv_heads * per_head


class PagedKVCache:
    """K/V tensors of ``num_blocks`` blocks on one device; blocks are owned by the engine's block manager."""

    def __init__(
        self,
        *,
        num_layers: int,
        num_kv_heads: int,
        head_dim: int,
        block_size: int,
        num_blocks: int,
        dtype: torch.dtype,
        device: torch.device,
        int8: bool = False,
    ) -> None:
        self.block_size = block_size
        self.num_blocks = num_blocks
        self.dtype = dtype  # what reads return: the model's compute dtype
        self.int8 = int8
        shape = (num_layers, 2, num_blocks * block_size, num_kv_heads, head_dim)
        self._data = torch.empty(shape, dtype=torch.int8 if int8 else dtype, device=device)
        self._scales = torch.empty(shape[:-1], dtype=_SCALE_DTYPE, device=device) if int8 else None

    @property
    def nbytes(self) -> int:
        scales = self._scales.nbytes if self._scales is not None else 0
        return self._data.nbytes + scales

    def write(self, layer: int, slots: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> None:
        """Store ``key``/``value`` ``[n, kv_heads, head_dim]`` at ``slots`` ``[n]`` (device tensor)."""
        if self._scales is None:
            self._data[layer, 0, slots] = key.to(self._data.dtype)
            self._data[layer, 1, slots] = value.to(self._data.dtype)
            return
        for kind, tensor in ((0, key), (1, value)):
            quantized, scale = _quantize_per_head(tensor)
            self._data[layer, kind, slots] = quantized
            self._scales[layer, kind, slots] = scale

    def read(self, layer: int, slots: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """K and V at ``slots`` (any shape ``S``): two ``[*S, kv_heads, head_dim]`` tensors in ``dtype``."""
        key, value = self._data[layer, 0, slots], self._data[layer, 1, slots]
        if self._scales is None:
            return key, value
        key_scale, value_scale = self._scales[layer, 0, slots], self._scales[layer, 1, slots]
        return _dequantize(key, key_scale, self.dtype), _dequantize(value, value_scale, self.dtype)


def _quantize_per_head(tensor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric int8 over ``head_dim``: one scale per token and head, the head's max maps to 127."""
    values = tensor.to(_SCALE_DTYPE)
    scale = values.abs().amax(dim=-1).clamp(min=1e-8) / 127.0
    quantized = torch.round(values / scale[..., None]).clamp(-127, 127).to(torch.int8)
    return quantized, scale


def _dequantize(quantized: torch.Tensor, scale: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (quantized.to(_SCALE_DTYPE) * scale[..., None]).to(dtype)
