"""MinHash-LSH near-duplicate removal: quality on planted duplicates, determinism, storage backends."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pydantic
import pytest

from shipyard.data.dedup.clustering import components
from shipyard.data.dedup.inprocess import run_global_step
from shipyard.data.dedup.minhash import MinHashDedup
from shipyard.data.document import Document
from shipyard.data.registry import step_class
from shipyard.storage.local import LocalStorage
from tests.unit.data.test_dedup_planted import planted_corpus, split_shards


def _run(docs_per_shard, root: pathlib.Path, **params):
    step_params = MinHashDedup.Params(**params)
    return run_global_step(
        lambda: MinHashDedup(step_params), docs_per_shard, LocalStorage(), f"file://{root}"
    )


def _removed(docs, kept_per_shard) -> set[str]:
    kept = {d.id for shard in kept_per_shard for d in shard}
    return {d.id for d in docs} - kept


def test_finds_planted_exact_and_near_duplicates_with_high_precision_and_recall(
    shared_data, tmp_path
) -> None:
    planted = planted_corpus(shared_data)
    kept, stats = _run(split_shards(planted.docs, 3), tmp_path)
    removed = _removed(planted.docs, kept)
    true_pos = removed & planted.expected_removed
    assert len(true_pos) / len(removed) >= 0.9, removed - planted.expected_removed
    assert len(true_pos) / len(planted.expected_removed) >= 0.9, planted.expected_removed - removed
    assert stats.dropped["near_duplicate"] == len(removed)
    assert stats.docs_in == len(planted.docs) and stats.docs_out == len(planted.docs) - len(removed)


def test_same_survivors_with_one_or_three_shards(shared_data, tmp_path) -> None:
    planted = planted_corpus(shared_data, distinct=120)
    one, _ = _run([planted.docs], tmp_path / "one")
    three, _ = _run(split_shards(planted.docs, 3), tmp_path / "three")
    assert [d.id for d in one[0]] == [d.id for shard in three for d in shard]


def test_reduce_twice_writes_identical_decision(shared_data, tmp_path) -> None:
    planted = planted_corpus(shared_data, distinct=80)
    _run(split_shards(planted.docs, 2), tmp_path)
    global_dir = tmp_path / "global"
    before = {p.name: p.read_bytes() for p in global_dir.iterdir()}
    _run(split_shards(planted.docs, 2), tmp_path)
    assert {p.name: p.read_bytes() for p in global_dir.iterdir()} == before
    assert json.loads(before["decision.json"])["removed"] > 0


def test_keeps_first_document_of_cluster_in_shard_order(tmp_path) -> None:
    text = " ".join(f"word{i}" for i in range(200))
    shards = [
        [Document("a", "unrelated text " * 20)],
        [Document("first", text)],
        [Document("second", text + " x")],
    ]
    kept, _ = _run(shards, tmp_path)
    assert [[d.id for d in s] for s in kept] == [["a"], ["first"], []]


def test_japanese_is_shingled_by_characters(shared_data, tmp_path) -> None:
    text = (shared_data / "corpus/books/wagahai_wa_neko_de_aru.ja.txt").read_text().split("\n")
    para = max(text, key=len)
    edited = para[:50] + "犬" + para[51:]
    kept, _ = _run([[Document("ja", para), Document("ja-edit", edited)]], tmp_path)
    assert [d.id for d in kept[0]] == ["ja"]


def test_udhr_spelling_variants_are_near_duplicates_but_scripts_and_languages_are_not(
    shared_data, tmp_path
) -> None:
    # Documented behaviour: de-1901 vs de-1996 (spelling reform: daß/dass) estimate ~0.96 Jaccard and
    # are merged; pt-BR vs pt-PT (~0.1) and sr-Cyrl vs sr-Latn (different scripts, 0) stay.
    meta = [json.loads(x) for x in (shared_data / "corpus/udhr/languages.jsonl").read_text().splitlines()]
    files = {m["lang"]: m["file"] for m in meta}
    langs = ["de-1901", "de-1996", "pt-BR", "pt-PT", "sr-Cyrl", "sr-Latn"]
    docs = [Document(lang, (shared_data / "corpus/udhr" / files[lang]).read_text()) for lang in langs]
    kept, stats = _run([docs], tmp_path)
    assert [d.id for d in kept[0]] == ["de-1901", "pt-BR", "pt-PT", "sr-Cyrl", "sr-Latn"]


def test_threshold_verification_keeps_true_pairs(shared_data, tmp_path) -> None:
    planted = planted_corpus(shared_data, distinct=120)
    plain, _ = _run(split_shards(planted.docs, 2), tmp_path / "plain")
    verified, _ = _run(split_shards(planted.docs, 2), tmp_path / "verified", threshold=0.5)
    assert _removed(planted.docs, verified) <= _removed(planted.docs, plain)
    assert len(_removed(planted.docs, verified) & planted.expected_removed) >= 0.9 * len(
        planted.expected_removed
    )


def test_components_label_each_node_with_lowest_id() -> None:
    nodes, label = components(np.array([9, 4, 7, 1]), np.array([4, 2, 8, 7]))
    assert dict(zip(nodes.tolist(), label.tolist(), strict=True)) == {1: 1, 2: 2, 4: 2, 7: 1, 8: 1, 9: 2}


def test_registry_name_and_param_validation_names_the_field() -> None:
    assert step_class("minhash_dedup") is MinHashDedup
    with pytest.raises(pydantic.ValidationError, match="bands"):
        MinHashDedup.Params(bands=0)
    with pytest.raises(pydantic.ValidationError, match="threshold"):
        MinHashDedup.Params(threshold=1.5)


def test_reduce_refuses_signatures_collected_with_other_parameters(shared_data, tmp_path) -> None:
    from shipyard.errors import FailedPrecondition

    docs = [[Document("a", "one two three four five six")]]
    _run(docs, tmp_path)
    with pytest.raises(FailedPrecondition, match="rerun collect"):
        step = MinHashDedup(MinHashDedup.Params(rows=4))
        from shipyard.data.step import GlobalContext

        step.reduce(
            GlobalContext(
                1,
                LocalStorage(),
                [f"file://{tmp_path}/scratch/00000"],
                f"file://{tmp_path}/g",
                f"file://{tmp_path}/o",
                lambda *a: None,
            )
        )


@pytest.mark.integration
def test_runs_through_s3(shared_data, s3_env) -> None:
    planted = planted_corpus(shared_data, distinct=80)
    params = MinHashDedup.Params(threshold=0.5)
    kept, _ = run_global_step(
        lambda: MinHashDedup(params), split_shards(planted.docs, 2), s3_env.storage, f"{s3_env.root}/dedup"
    )
    removed = _removed(planted.docs, kept)
    assert len(removed & planted.expected_removed) >= 0.9 * len(planted.expected_removed)
    assert s3_env.storage.exists(f"{s3_env.root}/dedup/global/decision.json")
