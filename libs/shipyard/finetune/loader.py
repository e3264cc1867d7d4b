"""The finetune side of the training loop's ``StepLoader``: encoded examples in, padded micro batches out.

The driver encodes the dataset once (``shipyard.finetune.dataset``) and writes the rows to storage as
JSON lines (``write_rows``); every worker reads them back (``read_rows``), so all ranks see the same
rows without each re-tokenizing the data. A row is a dict of token lists: ``input_ids``/``labels``
(and ``position_ids`` when packed) for supervised finetuning, or ``chosen_*``/``rejected_*`` for DPO.
``FinetuneLoader`` orders them exactly like the pretraining loader (``ShuffledRows``: one seeded
permutation per epoch, a position of ``(epoch, offset)``), so a resumed run continues with exactly the
next global batch. Batches are collated by ``packing.collate`` (right padding, ``position_ids`` for
packed rows).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence

import torch

from shipyard.finetune.encode import EncodedExample
from shipyard.finetune.packing import PackedRow, collate
from shipyard.storage.base import Storage
from shipyard.training.data_loader import DataPosition, ShuffledRows

__all__ = ["FinetuneLoader", "collate_rows", "eval_batches", "read_rows", "write_rows"]

Row = dict[str, list[int]]
Batch = dict[str, torch.Tensor]


def write_rows(storage: Storage, uri: str, rows: Sequence[Row]) -> None:
    storage.write_text(uri, "".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows))


def read_rows(storage: Storage, uri: str) -> list[Row]:
    return [json.loads(line) for line in storage.read_text(uri).splitlines() if line]


def collate_rows(rows: Sequence[Row], pad_id: int) -> Batch:
    """One padded batch (``packing.collate``); DPO rows give ``chosen_*`` and ``rejected_*`` tensors."""
    if "chosen_input_ids" not in rows[0]:
        return collate([_example(r) for r in rows], pad_id)
    batch: Batch = {}
    for side in ("chosen", "rejected"):
        sides = [EncodedExample(r[f"{side}_input_ids"], r[f"{side}_labels"]) for r in rows]
        batch.update({f"{side}_{k}": v for k, v in collate(sides, pad_id).items()})
    return batch


def _example(row: Row) -> EncodedExample | PackedRow:
    if "position_ids" in row:
        return PackedRow(row["input_ids"], row["labels"], row["position_ids"])
    return EncodedExample(row["input_ids"], row["labels"])


def real_tokens(rows: Sequence[Row]) -> int:
    """Tokens a step processes, padding excluded (what tokens/s counts)."""
    return sum(len(v) for r in rows for k, v in r.items() if k.endswith("input_ids"))


class FinetuneLoader(ShuffledRows):
    """This rank's micro batches of ``rows``; ``last_tokens`` is the real tokens of its last step."""

    def __init__(
        self,
        rows: Sequence[Row],
        *,
        pad_id: int,
        rank: int,
        world_size: int,
        micro_batch_size: int,
        grad_accum: int,
        seed: int,
        position: DataPosition | None = None,
    ) -> None:
        super().__init__(
            len(rows),
            rank=rank,
            world_size=world_size,
            micro_batch_size=micro_batch_size,
            grad_accum=grad_accum,
            seed=seed,
            position=position,
            what="training examples (after the validation split)",
        )
        self.rows, self.pad_id = rows, pad_id
        self.last_tokens = 0

    def next_step(self) -> list[Batch]:
        micro = [[self.rows[int(i)] for i in indices] for indices in self.take_step()]
        self.last_tokens = sum(real_tokens(m) for m in micro)
        return [collate_rows(m, self.pad_id) for m in micro]


def eval_batches(
    rows: Sequence[Row], *, pad_id: int, rank: int, world_size: int, batch_size: int
) -> Iterator[Batch]:
    """This rank's share of the validation rows (every ``world_size``-th), in fixed order."""
    mine = list(rows[rank::world_size])
    for i in range(0, len(mine), batch_size):
        yield collate_rows(mine[i : i + batch_size], pad_id)
