"""The training data loader: same batches every run, disjoint rank slices, exact resume."""

from __future__ import annotations

import pathlib

import numpy as np
import pytest
import torch

from shipyard.data.manifest import DatasetManifest, TokenizerRef, TokenShard, read_manifest, write_manifest
from shipyard.errors import InvalidArgument
from shipyard.storage import from_local_path
from shipyard.storage.local import LocalStorage
from shipyard.training.data_loader import DataPosition, ResumableLoader

SEQ_LEN = 8


@pytest.fixture
def dataset(tmp_path: pathlib.Path) -> DatasetManifest:
    """Two shards (30 + 20 sequences); every token of sequence g is g, so a batch shows its indices."""
    shards = []
    start = 0
    for i, n in enumerate((30, 20)):
        rows = np.repeat(np.arange(start, start + n, dtype=np.uint16)[:, None], SEQ_LEN, axis=1)
        np.save(tmp_path / f"tokens-{i}.npy", rows)
        shards.append(TokenShard(uri=f"tokens-{i}.npy", sequences=n, tokens=n * SEQ_LEN))
        start += n
    manifest = DatasetManifest(
        name="synthetic",
        uri=from_local_path(tmp_path),
        tokenizer=TokenizerRef(uri="tokenizer", vocab_size=100),
        seq_len=SEQ_LEN,
        dtype="uint16",
        token_shards=shards,
        num_tokens=50 * SEQ_LEN,
        num_sequences=50,
    )
    write_manifest(LocalStorage(), manifest)
    return read_manifest(LocalStorage(), str(tmp_path))


def _loader(manifest: DatasetManifest, **kw: object) -> ResumableLoader:
    args: dict[str, object] = {
        "rank": 0,
        "world_size": 1,
        "micro_batch_size": 2,
        "grad_accum": 2,
        "seq_len": SEQ_LEN,
        "seed": 7,
    }
    args.update(kw)
    return ResumableLoader(LocalStorage(), manifest, **args)  # type: ignore[arg-type]


def _ids(micro_batches: list[dict[str, torch.Tensor]]) -> list[int]:
    return [int(row[0]) for mb in micro_batches for row in mb["input_ids"]]


def test_same_seed_gives_same_batches_and_another_seed_differs(dataset: DatasetManifest) -> None:
    a, b, c = _loader(dataset), _loader(dataset), _loader(dataset, seed=8)
    run_a = [_ids(a.next_step()) for _ in range(5)]
    assert run_a == [_ids(b.next_step()) for _ in range(5)]
    assert run_a != [_ids(c.next_step()) for _ in range(5)]


def test_micro_batches_have_the_requested_shape(dataset: DatasetManifest) -> None:
    step = _loader(dataset, seq_len=5).next_step()
    assert [tuple(mb["input_ids"].shape) for mb in step] == [(2, 5), (2, 5)]
    assert step[0]["input_ids"].dtype == torch.int64


def test_ranks_take_disjoint_slices_that_cover_the_global_batch(dataset: DatasetManifest) -> None:
    single = _loader(dataset, grad_accum=4)  # the same global batch (8) on one worker
    ranks = [_loader(dataset, rank=r, world_size=2) for r in range(2)]
    for _ in range(3):
        parts = [_ids(r.next_step()) for r in ranks]
        assert not set(parts[0]) & set(parts[1])
        assert parts[0] + parts[1] == _ids(single.next_step())


def test_an_epoch_visits_every_sequence_once_then_reshuffles(dataset: DatasetManifest) -> None:
    loader = _loader(dataset, micro_batch_size=5, grad_accum=1)  # 10 steps of 5 = the 50 sequences
    epoch0 = [i for _ in range(10) for i in _ids(loader.next_step())]
    assert sorted(epoch0) == list(range(50))
    assert loader.position == DataPosition(1, 0)
    epoch1 = [i for _ in range(10) for i in _ids(loader.next_step())]
    assert sorted(epoch1) == list(range(50)) and epoch1 != epoch0


def test_a_short_epoch_tail_is_skipped(dataset: DatasetManifest) -> None:
    loader = _loader(dataset, micro_batch_size=4, grad_accum=4)  # 16 per step: 3 steps, 2 left over
    for _ in range(3):
        loader.next_step()
    assert loader.position == DataPosition(1, 0)


def test_resume_from_a_saved_position_continues_with_the_next_batch(dataset: DatasetManifest) -> None:
    straight = _loader(dataset, world_size=2, rank=1)
    expected = [_ids(straight.next_step()) for _ in range(20)]  # crosses epoch boundaries
    first = _loader(dataset, world_size=2, rank=1)
    got = [_ids(first.next_step()) for _ in range(9)]
    saved = DataPosition.from_dict(first.position.to_dict())
    resumed = _loader(dataset, world_size=2, rank=1, position=saved)
    got += [_ids(resumed.next_step()) for _ in range(11)]
    assert got == expected


def test_a_batch_larger_than_the_dataset_is_rejected_naming_the_field(dataset: DatasetManifest) -> None:
    with pytest.raises(InvalidArgument, match="globalBatchSize"):
        _loader(dataset, micro_batch_size=30, grad_accum=2)
    with pytest.raises(InvalidArgument, match="seqLen"):
        _loader(dataset, seq_len=SEQ_LEN + 1)
