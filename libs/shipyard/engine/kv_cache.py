"""The paged KV cache: one preallocated tensor of fixed-size blocks, read and written by slot.

Layout: ``[layers, 2 (K/V), num_blocks, block_size, kv_heads, head_dim]``, so one layer's K (or V) is a
contiguous ``[num_blocks * block_size, kv_heads, head_dim]`` table and position ``p`` of a sequence lives
at slot ``block_table[p // block_size] * block_size + p % block_size``. With ``int8`` the values are
stored quantized symmetrically per token and head, with a float32 scale beside each (half the memory of
bfloat16, a quarter of float32, for ``4 / head_dim`` extra bytes).

The tensor is allocated uninitialised (on CPU its pages are committed only as the cache fills): readers
only ever gather slots that were written, padding included (the runner pads with a sequence's own last
slot), so NaN garbage can never reach a masked-out product (0 * NaN is NaN).

``DecodeKVView`` keeps the decoding sequences' K/V contiguous beside the cache (see its docstring): the
decode hot path then appends one token per sequence instead of gathering every context every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from shipyard.errors import Internal

__all__ = ["DecodeKVView", "DecodeLayout", "PagedKVCache", "kv_bytes_per_block"]

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
    def shape(self) -> tuple[int, ...]:
        """``(layers, 2, slots, kv_heads, head_dim)``."""
        return tuple(self._data.shape)

    @property
    def device(self) -> torch.device:
        return self._data.device

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

    def read_all_layers(self, slots: torch.Tensor) -> torch.Tensor:
        """K and V of every layer at ``slots`` ``[n]``: ``[layers, 2, n, kv_heads, head_dim]`` (not int8)."""
        if self._scales is not None:
            raise Internal("read_all_layers serves the decode view, which int8 caches do not use")
        return self._data[:, :, slots]

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


@dataclass(frozen=True)
class DecodeLayout:
    """Where one step's decoding sequences live in the ``DecodeKVView``."""

    rows: torch.Tensor  # [B] the view row of each one-token chunk, in chunk order
    positions: torch.Tensor  # [B] the position its new key/value is written at
    bias: torch.Tensor  # [R, 1, 1, L] attention bias: 0 where row r holds a key of its sequence, else -inf
    num_rows: int  # R: rows attended over (free rows in between are masked to one key)
    length: int  # L: the longest context this step
    in_order: bool  # rows == arange(B) and R == B: no scatter/gather of queries needed


@dataclass
class _Entry:
    row: int
    length: int  # positions of the sequence held in the row
    block_table: list[int]  # the table they were read through (a changed table means a new sequence)


class DecodeKVView:
    """The decoding sequences' K/V kept contiguous, one row per sequence, so attention reads it in place.

    Gathering every decoding sequence's whole context out of the paged cache in every layer of every
    step costs more than the attention itself on a CPU. This view holds ``[layers, 2, rows, kv_heads,
    len, head_dim]``: a sequence is copied in once when it starts decoding, and after that each step only
    appends its new token (the paged cache keeps being written too: it stays the source of truth for
    prefix caching, chunked prefill and preemption). A sequence absent from a step's decodes, or whose
    length or block table no longer match, is dropped and re-read from the paged cache when it returns.
    The view costs memory beside the cache, at most ``max_bytes``; a step needing more returns ``None``
    from ``prepare`` and the caller gathers from the paged cache instead. int8 caches do not use it.
    """

    def __init__(self, cache: PagedKVCache, *, max_bytes: int, max_rows: int | None = None) -> None:
        self._cache = cache
        self.max_bytes = max_bytes
        self.max_rows = max_rows  # the most sequences that decode together (the scheduler's max_num_seqs)
        layers, _, _, kv_heads, head_dim = cache.shape
        self._per_token = layers * 2 * kv_heads * head_dim * cache.dtype.itemsize
        self._entries: dict[int, _Entry] = {}
        self._data: torch.Tensor | None = None  # [layers, 2, rows, kv_heads, len, head_dim]

    @property
    def nbytes(self) -> int:
        return 0 if self._data is None else self._data.nbytes

    def reset(self) -> None:
        """Forget every row and free the memory (e.g. after a failed step left rows half written)."""
        self._entries.clear()
        self._data = None

    def prepare(
        self, seq_ids: list[int], block_tables: list[list[int]], lengths: list[int]
    ) -> DecodeLayout | None:
        """Rows for this step's one-token chunks (``lengths`` count the new token); None: use the cache."""
        if not seq_ids:
            self.reset()
            return None
        live = set(seq_ids)
        self._entries = {sid: e for sid, e in self._entries.items() if sid in live}
        stale: list[tuple[_Entry, list[int], int]] = []
        taken = {e.row for e in self._entries.values()}
        free = (r for r in range(len(seq_ids) + len(taken)) if r not in taken)
        for sid, table, length in zip(seq_ids, block_tables, lengths, strict=True):
            entry = self._entries.get(sid)
            # A row is current when it holds every position before the new token, read through the
            # same blocks (the same id with other blocks is another sequence, or a preempted one).
            if (
                entry is None
                or entry.length != length - 1
                or table[: len(entry.block_table)] != entry.block_table
            ):
                if entry is None:
                    entry = self._entries[sid] = _Entry(next(free), 0, [])
                stale.append((entry, table, length - 1))
            entry.length, entry.block_table = length, list(table)
        num_rows = max(e.row for e in self._entries.values()) + 1
        longest = max(lengths)
        if not self._ensure_capacity(num_rows, longest):
            self.reset()
            return None
        for entry, table, cached in stale:
            self._fill(entry.row, table, cached)
        return self._layout(seq_ids, lengths, num_rows, longest)

    def write(self, layer: int, layout: DecodeLayout, key: torch.Tensor, value: torch.Tensor) -> None:
        """Append this step's ``key``/``value`` ``[B, kv_heads, head_dim]`` at each row's new position."""
        assert self._data is not None
        self._data[layer, 0, layout.rows, :, layout.positions] = key.to(self._data.dtype)
        self._data[layer, 1, layout.rows, :, layout.positions] = value.to(self._data.dtype)

    def keys_values(self, layer: int, layout: DecodeLayout) -> tuple[torch.Tensor, torch.Tensor]:
        """``[R, kv_heads, L, head_dim]`` views (no copy) of the rows' keys and values."""
        assert self._data is not None
        data = self._data[layer, :, : layout.num_rows, :, : layout.length]
        return data[0], data[1]

    def _layout(self, seq_ids: list[int], lengths: list[int], num_rows: int, longest: int) -> DecodeLayout:
        rows = [self._entries[sid].row for sid in seq_ids]
        row_lengths = [1] * num_rows  # a free row attends to one (finite) key so softmax stays defined
        for row, length in zip(rows, lengths, strict=True):
            row_lengths[row] = length
        device = self._cache.device
        inside = torch.arange(longest)[None, :] < torch.tensor(row_lengths)[:, None]
        bias = torch.zeros(inside.shape, dtype=self._cache.dtype).masked_fill_(~inside, float("-inf"))
        return DecodeLayout(
            rows=torch.tensor(rows, dtype=torch.long, device=device),
            positions=torch.tensor(lengths, dtype=torch.long, device=device) - 1,
            bias=bias[:, None, None, :].to(device),
            num_rows=num_rows,
            length=longest,
            in_order=rows == list(range(num_rows)),
        )

    def _ensure_capacity(self, num_rows: int, length: int) -> bool:
        """Room for ``num_rows`` rows of ``length`` positions; False when the memory cap cannot hold them.

        Growing reallocates and copies the whole view, so it grows with headroom (rows x2 up to
        ``max_rows``, positions x1.5 in multiples of 64), trimmed to what the cap holds for ``max_rows``
        rows — never one position at a time, which near the cap would copy the whole view every step.
        """
        old = self._data
        old_rows, old_len = (0, 0) if old is None else (old.shape[2], old.shape[4])
        if num_rows <= old_rows and length <= old_len:
            return True
        budget = self.max_bytes // self._per_token  # rows x positions the cap holds
        if num_rows * length > budget:
            return False
        most_rows = self.max_rows or budget
        rows = max(num_rows, old_rows if num_rows <= old_rows else min(2 * old_rows, most_rows))
        rows = min(rows, budget // length)  # >= num_rows, as num_rows * length fits
        # Positions are sized for the most rows there can be, so filling up the rows later does not
        # have to shrink them again.
        cap = max(old_len, -(-max(length, old_len * 3 // 2) // 64) * 64)
        cap = max(length, min(cap, budget // max(rows, min(most_rows, budget // length))))
        layers, _, _, kv_heads, head_dim = self._cache.shape
        # Zeros, not empty: masked keys still meet the values in a product (0 * NaN would be NaN).
        data = torch.zeros(
            (layers, 2, rows, kv_heads, cap, head_dim), dtype=self._cache.dtype, device=self._cache.device
        )
        if old is not None:
            keep_rows, keep_len = min(old_rows, rows), min(old_len, cap)
            data[:, :, :keep_rows, :, :keep_len] = old[:, :, :keep_rows, :, :keep_len]
        self._data = data
        return True

    def _fill(self, row: int, table: list[int], cached: int) -> None:
        """Copy positions ``[0, cached)`` of one sequence from the paged cache into ``row``."""
        assert self._data is not None
        if cached == 0:
            return
        size = self._cache.block_size
        positions = torch.arange(cached)
        blocks = torch.tensor(table, dtype=torch.long)[positions // size]
        slots = (blocks * size + positions % size).to(self._cache.device)
        self._data[:, :, row, :, :cached] = self._cache.read_all_layers(slots).transpose(2, 3)
