"""The finetune loader: seeded order, disjoint rank slices, exact resume, padded batches, eval shares."""

from __future__ import annotations

import pytest
import torch

from shipyard.errors import InvalidArgument
from shipyard.finetune.loader import FinetuneLoader, eval_batches, read_rows, write_rows
from shipyard.storage import from_local_path
from shipyard.storage.local import LocalStorage
from shipyard.training.data_loader import DataPosition

# Row g is g+1 tokens long and every token is g, so a batch shows which rows it holds.
ROWS = [{"input_ids": [g] * (g % 5 + 1), "labels": [-100] + [g] * (g % 5)} for g in range(40)]


def _loader(**kw: object) -> FinetuneLoader:
    args: dict[str, object] = {
        "pad_id": -1,
        "rank": 0,
        "world_size": 1,
        "micro_batch_size": 2,
        "grad_accum": 2,
        "seed": 5,
    }
    args.update(kw)
    return FinetuneLoader(ROWS, **args)  # type: ignore[arg-type]


def _ids(step: list[dict[str, torch.Tensor]]) -> list[int]:
    return [int(row[0]) for mb in step for row in mb["input_ids"]]


def test_batches_are_right_padded_with_ignored_labels() -> None:
    loader = _loader()
    step = loader.next_step()
    batch = step[0]
    lengths = [ROWS[i]["input_ids"].__len__() for i in _ids(step)[:2]]
    assert batch["input_ids"].shape == (2, max(lengths))
    for row, n in zip(range(2), lengths, strict=True):
        assert (batch["input_ids"][row, n:] == -1).all() and (batch["labels"][row, n:] == -100).all()
    assert loader.last_tokens == sum(len(ROWS[i]["input_ids"]) for i in _ids(step))


def test_same_seed_same_order_and_ranks_split_the_global_batch() -> None:
    single = [_ids(_loader(grad_accum=4).next_step())]
    again = [_ids(_loader(grad_accum=4).next_step())]
    ranks = [_loader(rank=r, world_size=2) for r in range(2)]
    assert single == again
    assert _ids(ranks[0].next_step()) + _ids(ranks[1].next_step()) == single[0]
    assert _ids(_loader(seed=6).next_step()) != _ids(_loader().next_step())


def test_a_resumed_loader_continues_with_exactly_the_next_batches() -> None:
    straight = _loader()
    expected = [_ids(straight.next_step()) for _ in range(25)]  # crosses epoch boundaries
    first = _loader()
    got = [_ids(first.next_step()) for _ in range(11)]
    saved = DataPosition.from_dict(first.position.to_dict())
    resumed = _loader(position=saved)
    got += [_ids(resumed.next_step()) for _ in range(14)]
    assert got == expected


def test_a_global_batch_larger_than_the_data_names_the_field() -> None:
    with pytest.raises(InvalidArgument) as info:
        _loader(micro_batch_size=32, grad_accum=2)
    assert info.value.violations[0].field == "spec.hyperparameters.globalBatchSize"


def test_eval_shares_cover_every_row_once() -> None:
    seen = [
        int(row[0])
        for rank in range(3)
        for batch in eval_batches(ROWS, pad_id=-1, rank=rank, world_size=3, batch_size=4)
        for row in batch["input_ids"]
    ]
    assert sorted(seen) == list(range(40))


def test_rows_round_trip_through_storage(tmp_path: object) -> None:
    uri = from_local_path(tmp_path) + "/rows.jsonl"  # type: ignore[arg-type]
    write_rows(LocalStorage(), uri, ROWS)
    assert read_rows(LocalStorage(), uri) == ROWS
