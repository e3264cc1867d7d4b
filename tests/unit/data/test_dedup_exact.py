"""Exact dedup: normalized-hash duplicates, first occurrence kept, decision deterministic."""

from __future__ import annotations

import pydantic
import pytest

from shipyard.data.dedup.exact import ExactDedup
from shipyard.data.dedup.inprocess import run_global_step
from shipyard.data.document import Document
from shipyard.errors import FailedPrecondition
from shipyard.storage.local import LocalStorage
from tests.unit.data.test_dedup_planted import planted_corpus, split_shards


def _run(shards, root, **params):
    p = ExactDedup.Params(**params)
    return run_global_step(lambda: ExactDedup(p), shards, LocalStorage(), f"file://{root}")


def test_removes_case_and_whitespace_variants_but_not_near_duplicates(shared_data, tmp_path) -> None:
    planted = planted_corpus(shared_data)
    kept, stats = _run(split_shards(planted.docs, 3), tmp_path)
    removed = {d.id for d in planted.docs} - {d.id for s in kept for d in s}
    assert removed == {i for i in planted.expected_removed if i.endswith("-exact")}
    assert stats.dropped == {"exact_duplicate": 30}


def test_first_occurrence_in_shard_order_survives_regardless_of_shard_count(tmp_path) -> None:
    docs = [Document(str(i), t) for i, t in enumerate(["b", "A", "a", "c", "B ", "a"])]
    one, _ = _run([docs], tmp_path / "one")
    three, _ = _run(split_shards(docs, 3), tmp_path / "three")
    assert [d.id for d in one[0]] == [d.id for s in three for d in s] == ["0", "1", "3"]


def test_case_sensitive_and_64_bit_options(tmp_path) -> None:
    docs = [Document("x", "Hello  world"), Document("y", "hello world"), Document("z", "Hello world")]
    kept, _ = _run([docs], tmp_path, lowercase=False, hash_bits=64)
    assert [d.id for d in kept[0]] == ["x", "y"]


def test_reduce_is_idempotent(tmp_path) -> None:
    docs = [Document(str(i), f"text {i % 5}") for i in range(40)]
    _run(split_shards(docs, 4), tmp_path)
    before = {p.name: p.read_bytes() for p in (tmp_path / "global").iterdir()}
    _run(split_shards(docs, 4), tmp_path)
    assert {p.name: p.read_bytes() for p in (tmp_path / "global").iterdir()} == before


def test_apply_before_reduce_is_a_precondition_error(tmp_path) -> None:
    from shipyard.data.dedup.inprocess import _shard_context

    ctx = _shard_context(LocalStorage(), f"file://{tmp_path}", 0, 1)
    with pytest.raises(FailedPrecondition, match="run the earlier dedup phase"):
        list(ExactDedup().apply([Document("a", "x")], ctx))


def test_bad_params_name_the_field() -> None:
    with pytest.raises(pydantic.ValidationError, match="hash_bits"):
        ExactDedup.Params(hash_bits=32)
