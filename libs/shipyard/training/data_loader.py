"""The deterministic, resumable loaders that feed each data-parallel rank its micro batches.

``StepLoader`` is what the training loop needs: ``next_step()`` (this rank's micro batches, dicts of
tensors) and a ``position`` to save and restore. ``ShuffledRows`` holds the ordering logic below for any
indexable collection of rows; ``ResumableLoader`` serves token shards (pretraining) and the finetune
loader (``shipyard.finetune.loader``) encoded examples.

Every epoch has one global order of the dataset's sequences, a permutation seeded by ``(seed, epoch)``.
An optimizer step consumes the next ``global_batch_size`` sequences of that order; rank ``r`` takes the
``r``-th contiguous slice of ``micro_batch_size x grad_accum`` sequences and cuts it into ``grad_accum``
micro batches. The position is a pair ``(epoch, offset)`` that is the same on every rank, so it is
saved once in a checkpoint and a resumed run (even with another worker count) continues with exactly
the next global batch. The tail of an epoch shorter than a global batch is skipped, so every step sees a
full batch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from shipyard.data.manifest import DatasetManifest, TokenShardReader
from shipyard.errors import FieldViolation, InvalidArgument
from shipyard.storage.base import Storage

__all__ = ["DataPosition", "ResumableLoader", "ShuffledRows", "StepLoader"]


@dataclass(frozen=True)
class DataPosition:
    """Where the next global batch starts: sequence ``offset`` of epoch ``epoch``'s order."""

    epoch: int = 0
    offset: int = 0

    def to_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "offset": self.offset}

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> DataPosition:
        return cls(int(data["epoch"]), int(data["offset"]))


class StepLoader(Protocol):
    position: DataPosition

    def next_step(self) -> list[dict[str, torch.Tensor]]: ...


class ShuffledRows:
    """The global order of ``num_rows`` rows and each rank's share of a step (see the module docstring)."""

    def __init__(
        self,
        num_rows: int,
        *,
        rank: int,
        world_size: int,
        micro_batch_size: int,
        grad_accum: int,
        seed: int,
        position: DataPosition | None = None,
        rows_field: str = "spec.hyperparameters.globalBatchSize",
        what: str = "sequences",
    ) -> None:
        self.num_sequences = num_rows
        self.global_batch = micro_batch_size * grad_accum * world_size
        violations = []
        if not 0 <= rank < world_size:
            violations.append(FieldViolation("rank", f"must be in [0, {world_size}), got {rank}"))
        if self.global_batch > self.num_sequences:
            violations.append(
                FieldViolation(
                    rows_field, f"{self.global_batch} is more than the dataset's {self.num_sequences} {what}"
                )
            )
        if violations:
            raise InvalidArgument("invalid data loader settings", violations=violations)
        self.rank, self.world_size = rank, world_size
        self.micro_batch_size, self.grad_accum = micro_batch_size, grad_accum
        self.seed = seed
        self.position = position or DataPosition()
        self._order: tuple[int, np.ndarray] | None = None

    @property
    def steps_per_epoch(self) -> int:
        return self.num_sequences // self.global_batch

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The global sequence order of ``epoch`` (the same on every rank and every run)."""
        if self._order is None or self._order[0] != epoch:
            rng = np.random.default_rng([self.seed, epoch])
            self._order = (epoch, rng.permutation(self.num_sequences))
        return self._order[1]

    def global_batch_indices(self, position: DataPosition) -> np.ndarray:
        """The ``global_batch`` sequence indices of the step starting at ``position``."""
        return self.epoch_order(position.epoch)[position.offset : position.offset + self.global_batch]

    def take_step(self) -> list[np.ndarray]:
        """This rank's row indices for the next step, one array per micro batch; advances ``position``."""
        indices = self.global_batch_indices(self.position)
        per_rank = self.micro_batch_size * self.grad_accum
        mine = indices[self.rank * per_rank : (self.rank + 1) * per_rank]
        self.position = self._advance(self.position)
        return [mine[i : i + self.micro_batch_size] for i in range(0, per_rank, self.micro_batch_size)]

    def _advance(self, position: DataPosition) -> DataPosition:
        offset = position.offset + self.global_batch
        if offset + self.global_batch > self.num_sequences:
            return DataPosition(position.epoch + 1, 0)
        return DataPosition(position.epoch, offset)


class ResumableLoader(ShuffledRows):
    """Micro batches ``{"input_ids": [micro_batch_size, seq_len] int64}`` of token shards for one rank.

    ``next_step()`` returns the ``grad_accum`` micro batches of the next optimizer step and advances
    ``position``. Sequences longer than ``seq_len`` are cut to their first ``seq_len`` tokens.
    """

    def __init__(
        self,
        storage: Storage,
        manifest: DatasetManifest,
        *,
        rank: int,
        world_size: int,
        micro_batch_size: int,
        grad_accum: int,
        seq_len: int,
        seed: int,
        position: DataPosition | None = None,
    ) -> None:
        if manifest.seq_len is not None and seq_len > manifest.seq_len:
            raise InvalidArgument.field(
                "spec.data.seqLen", f"{seq_len} is more than the dataset's {manifest.seq_len}"
            )
        self._reader = TokenShardReader(storage, manifest)
        super().__init__(
            len(self._reader),
            rank=rank,
            world_size=world_size,
            micro_batch_size=micro_batch_size,
            grad_accum=grad_accum,
            seed=seed,
            position=position,
        )
        self.seq_len = seq_len

    def next_step(self) -> list[dict[str, torch.Tensor]]:
        """This rank's micro batches for the next optimizer step; advances ``position``."""
        return [
            {
                "input_ids": torch.from_numpy(
                    np.stack([np.asarray(self._reader[int(i)][: self.seq_len]) for i in micro]).astype(
                        np.int64
                    )
                )
            }
            for micro in self.take_step()
        ]

    def __iter__(self) -> Iterator[list[dict[str, torch.Tensor]]]:
        while True:
            yield self.next_step()
