"""Sequence packing and batch collation for finetuning.

Short chat examples waste most of a padded batch; packing concatenates several into one row of up to
``seq_len`` tokens. Two things keep packed examples independent:

- attention: ``position_ids`` restart at 0 at each example. With no ``attention_mask``, transformers (5.x,
  ``masking_utils.find_packed_sequence_indices``) reads the restarts as sequence boundaries and builds a
  block-diagonal causal mask for eager/sdpa, and flash-attention uses them as ``cu_seqlens``. The model
  must therefore be called with ``position_ids``, without ``attention_mask`` and with ``use_cache=False``:
  transformers 5.23 skips the detection whenever a KV cache object exists, and a model whose config has
  ``use_cache=True`` creates one on every forward, even in training mode, so examples would silently
  attend to each other. Where the caller cannot guarantee that, ``collate(..., packed_mask_dtype=...)``
  returns an explicit 4-D block-diagonal mask instead.
- loss: the model shifts labels left, so the label of an example's first token would be predicted from
  the previous example's last token. That label is set to -100 (it is never a target unpacked either).

Padding in a packed batch is one more "example" of pad tokens with its own position ids and -100 labels,
so it never attends to or is attended by real tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from shipyard.errors import InvalidArgument
from shipyard.finetune.encode import IGNORE_INDEX, EncodedExample

if TYPE_CHECKING:
    import torch

__all__ = ["PackedRow", "block_causal_mask", "collate", "pack"]


@dataclass(frozen=True)
class PackedRow:
    """Several examples in one row; ``lengths`` are their token counts in order."""

    input_ids: list[int]
    labels: list[int]
    position_ids: list[int]
    lengths: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.input_ids)


def pack(
    examples: Sequence[EncodedExample],
    seq_len: int,
    *,
    strategy: Literal["first_fit_decreasing", "sequential"] = "first_fit_decreasing",
) -> list[PackedRow]:
    """Pack ``examples`` into rows of at most ``seq_len`` tokens (each example whole, never split).

    ``first_fit_decreasing`` fills rows tightest (deterministic: ties keep input order);
    ``sequential`` keeps the input order and starts a new row when the next example does not fit.
    """
    if not isinstance(seq_len, int) or seq_len < 2:
        raise InvalidArgument.field("seq_len", f"must be an integer >= 2, got {seq_len!r}")
    for i, example in enumerate(examples):
        if not isinstance(example, EncodedExample):
            raise InvalidArgument.field(
                f"examples[{i}]", f"only EncodedExample rows can be packed, got {type(example).__name__}"
            )
        if len(example) > seq_len:
            raise InvalidArgument.field(
                f"examples[{i}]",
                f"{len(example)} tokens do not fit seq_len {seq_len}; encode with max_len <= seq_len",
            )
    bins: list[list[int]] = []
    free: list[int] = []
    if strategy == "sequential":
        used = seq_len + 1
        for i, example in enumerate(examples):
            if used + len(example) > seq_len:
                bins.append([])
                used = 0
            bins[-1].append(i)
            used += len(example)
    elif strategy == "first_fit_decreasing":
        for i in sorted(range(len(examples)), key=lambda k: -len(examples[k])):
            size = len(examples[i])
            row = next((r for r, room in enumerate(free) if room >= size), None)
            if row is None:
                bins.append([])
                free.append(seq_len)
                row = len(bins) - 1
            bins[row].append(i)
            free[row] -= size
    else:
        raise InvalidArgument.field(
            "strategy", f"must be 'first_fit_decreasing' or 'sequential', got {strategy!r}"
        )
    return [_row([examples[i] for i in members]) for members in bins]


def _row(members: Sequence[EncodedExample]) -> PackedRow:
    ids: list[int] = []
    labels: list[int] = []
    positions: list[int] = []
    for example in members:
        ids += example.input_ids
        labels += [IGNORE_INDEX, *example.labels[1:]]
        positions += range(len(example))
    return PackedRow(ids, labels, positions, tuple(len(m) for m in members))


def collate(
    rows: Sequence[PackedRow | EncodedExample],
    pad_id: int,
    *,
    pad_to_multiple_of: int = 1,
    packed_mask_dtype: torch.dtype | None = None,
) -> dict[str, torch.Tensor]:
    """Right-padded ``[batch, length]`` int64 tensors: ``input_ids``, ``labels``, ``position_ids``.

    Packed rows get no ``attention_mask``: boundaries come from ``position_ids``, and the model must be
    called with ``use_cache=False`` (see the module docstring). With ``packed_mask_dtype`` they get a 4-D
    block-diagonal causal ``attention_mask`` of that dtype instead (0 = attend, dtype min = masked, the
    model's dtype), which needs nothing from the caller but costs ``batch x length^2`` memory and rules
    out flash-attention. Unpacked examples get a 2-D mask only when some are padded, so an unpadded batch
    keeps sdpa's causal fast path.
    """
    import torch  # here, so importing shipyard.finetune (e.g. to validate a spec) does not load torch

    if not rows:
        raise InvalidArgument.field("rows", "a batch needs at least one row")
    packed = isinstance(rows[0], PackedRow)
    if any(isinstance(r, PackedRow) != packed or not isinstance(r, PackedRow | EncodedExample) for r in rows):
        raise InvalidArgument.field("rows", "a batch must be all PackedRow or all EncodedExample")
    if not isinstance(pad_id, int):
        raise InvalidArgument.field("pad_id", f"must be a token id, got {pad_id!r}")
    longest = max(len(r) for r in rows)
    length = -(-longest // pad_to_multiple_of) * pad_to_multiple_of
    input_ids = torch.full((len(rows), length), pad_id, dtype=torch.long)
    labels = torch.full((len(rows), length), IGNORE_INDEX, dtype=torch.long)
    positions = torch.arange(length).repeat(len(rows), 1)
    mask = torch.zeros((len(rows), length), dtype=torch.long)
    for b, row in enumerate(rows):
        n = len(row)
        input_ids[b, :n] = torch.tensor(row.input_ids, dtype=torch.long)
        labels[b, :n] = torch.tensor(row.labels, dtype=torch.long)
        mask[b, :n] = 1
        if isinstance(row, PackedRow):
            positions[b, :n] = torch.tensor(row.position_ids, dtype=torch.long)
            positions[b, n:] = torch.arange(length - n)  # the padding is a segment of its own
    batch = {"input_ids": input_ids, "labels": labels, "position_ids": positions}
    if packed and packed_mask_dtype is not None:
        batch["attention_mask"] = block_causal_mask(positions, packed_mask_dtype)
    elif not packed and any(len(r) < length for r in rows):
        batch["attention_mask"] = mask
    return batch


def block_causal_mask(position_ids: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``[batch, 1, length, length]`` additive mask: causal inside each segment, blocked across segments.

    A segment starts wherever ``position_ids`` does not continue the previous position by one.
    """
    import torch

    starts = torch.ones_like(position_ids, dtype=torch.bool)
    starts[:, 1:] = position_ids[:, 1:] != position_ids[:, :-1] + 1
    segment = starts.cumsum(-1)
    length = position_ids.shape[-1]
    causal = torch.ones(length, length, dtype=torch.bool).tril()
    allowed = (segment[:, :, None] == segment[:, None, :]) & causal
    blocked = torch.zeros(allowed.shape, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)
    return blocked[:, None]
