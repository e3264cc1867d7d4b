"""The dataset manifest: round trip, validation errors naming the field, shard access, rank sharding."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import numpy as np
import pytest

from shipyard.data.manifest import (
    DatasetManifest,
    TokenizerRef,
    TokenShard,
    TokenShardReader,
    iter_sequences,
    open_token_shard,
    read_manifest,
    write_manifest,
)
from shipyard.data.step import StepStats
from shipyard.data.tokenization.token_shard_writer import NpyRowSpool
from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound
from shipyard.storage import LocalStorage, from_local_path, join

SEQ_LEN = 8


def make_dataset(root: pathlib.Path, rows_per_shard: list[int]) -> DatasetManifest:
    """Token shards whose rows hold their global sequence index, written as ``tokenize`` writes them."""
    storage, uri = LocalStorage(), from_local_path(root)
    shards, start = [], 0
    for i, n in enumerate(rows_per_shard):
        rows = np.repeat(np.arange(start, start + n, dtype=np.uint16)[:, None], SEQ_LEN, axis=1)
        with NpyRowSpool(SEQ_LEN, np.uint16) as spool:
            spool.append(rows)
            sha = spool.commit(storage, join(uri, f"tokens/shard-{i:05d}.npy"))
        meta = {"sequences": n, "tokens": n * SEQ_LEN, "documents": n, "sha256": sha, "seq_len": SEQ_LEN}
        shards.append(TokenShard.from_output(f"tokens/shard-{i:05d}.npy", meta))
        start += n
    stats = StepStats("tokenize", docs_in=start, docs_out=start)
    stats.extra["tokens"] = start * SEQ_LEN
    return DatasetManifest(
        name="tiny",
        uri=uri,
        tokenizer=TokenizerRef.from_output(join(uri, "tokenizer"), {"vocab_size": 1000, "eos_id": 1, "x": 0}),
        seq_len=SEQ_LEN,
        dtype="uint16",
        token_shards=shards,
        num_tokens=start * SEQ_LEN,
        num_sequences=start,
        num_documents=start,
        stats=[stats.to_dict()],
        spec={"input": {"uri": "file:///in"}, "steps": [{"type": "tokenize", "seqLen": SEQ_LEN}]},
    )


def test_manifest_round_trips_and_shards_reload_memory_mapped(tmp_path: pathlib.Path) -> None:
    manifest = make_dataset(tmp_path, [3, 0, 5])
    storage = LocalStorage()
    uri = write_manifest(storage, manifest)
    assert uri == join(from_local_path(tmp_path), "manifest.json")
    loaded = read_manifest(storage, from_local_path(tmp_path))
    assert loaded == manifest
    assert StepStats.from_dict(loaded.stats[0]).extra["tokens"] == 64
    shard = open_token_shard(storage, loaded, 2, verify=True)
    assert isinstance(shard, np.memmap) and shard.shape == (5, SEQ_LEN)
    assert shard[:, 0].tolist() == [3, 4, 5, 6, 7]


def test_a_moved_dataset_still_finds_its_shards(tmp_path: pathlib.Path) -> None:
    write_manifest(LocalStorage(), make_dataset(tmp_path / "a", [2, 2]))
    (tmp_path / "a").rename(tmp_path / "b")
    moved = read_manifest(LocalStorage(), from_local_path(tmp_path / "b" / "manifest.json"))
    assert moved.uri == from_local_path(tmp_path / "b")
    assert TokenShardReader(LocalStorage(), moved)[3].tolist() == [3] * SEQ_LEN


def _write_raw(tmp_path: pathlib.Path, data: dict[str, Any]) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(data))


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda d: d["token_shards"][1].update(sequences="many"), "token_shards[1].sequences"),
        (lambda d: d["token_shards"][0].update(tokens=7), "token_shards[0].tokens"),
        (lambda d: d.update(num_tokens=1), "num_tokens"),
        (lambda d: d.update(api_version="shipyard.dev/v9"), "api_version"),
        (lambda d: d.update(dtype="float32"), "dtype"),
        (lambda d: d.pop("tokenizer"), "tokenizer"),
        (lambda d: d.update(colour="blue"), "colour"),
    ],
)
def test_malformed_manifest_is_invalid_argument_naming_the_field(
    tmp_path: pathlib.Path, mutate: Any, field: str
) -> None:
    data = json.loads(make_dataset(tmp_path, [2, 3]).model_dump_json())
    mutate(data)
    _write_raw(tmp_path, data)
    with pytest.raises(InvalidArgument, match="invalid dataset manifest") as exc:
        read_manifest(LocalStorage(), from_local_path(tmp_path))
    assert field in [v.field for v in exc.value.violations]


def test_missing_or_non_json_manifest(tmp_path: pathlib.Path) -> None:
    with pytest.raises(NotFound, match="no dataset at"):
        read_manifest(LocalStorage(), from_local_path(tmp_path))
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(InvalidArgument, match="not JSON"):
        read_manifest(LocalStorage(), from_local_path(tmp_path))


def test_shard_that_disagrees_with_the_manifest_is_reported(tmp_path: pathlib.Path) -> None:
    manifest = make_dataset(tmp_path, [4])
    np.save(tmp_path / "tokens/shard-00000.npy", np.zeros((3, SEQ_LEN), dtype=np.uint16))
    with pytest.raises(FailedPrecondition, match="sha256"):
        open_token_shard(LocalStorage(), manifest, 0, verify=True)
    with pytest.raises(FailedPrecondition, match=r"the manifest says uint16\[4, 8\]"):
        open_token_shard(LocalStorage(), manifest, 0)


@pytest.mark.parametrize("world_size", [1, 2, 3, 7, 40])
def test_iter_sequences_deals_every_sequence_to_exactly_one_rank(
    tmp_path: pathlib.Path, world_size: int
) -> None:
    manifest = make_dataset(tmp_path, [5, 0, 1, 7, 0, 4])
    reader = TokenShardReader(LocalStorage(), manifest)
    seen: list[int] = []
    for rank in range(world_size):
        refs = list(iter_sequences(manifest, rank, world_size))
        assert [r.index for r in refs] == list(range(rank, 17, world_size))
        # The row a reference points to holds that global index (see make_dataset).
        seen += [int(reader[r.index][0]) for r in refs]
        assert all(reader.locate(r.index) == r for r in refs)
    assert sorted(seen) == list(range(17))


def test_iter_sequences_resumes_from_a_global_position(tmp_path: pathlib.Path) -> None:
    manifest = make_dataset(tmp_path, [5, 7])
    full = list(iter_sequences(manifest, 1, 4))
    assert list(iter_sequences(manifest, 1, 4, start=8)) == full[2:]
    with pytest.raises(InvalidArgument) as exc:
        list(iter_sequences(manifest, 4, 4, start=-1))
    assert [v.field for v in exc.value.violations] == ["rank", "start"]
