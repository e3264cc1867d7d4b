"""Collections: BM25 with Chinese, dense and hybrid search, persistence, building from an ingest manifest."""

from __future__ import annotations

import json
import pathlib

import pytest

from shipyard.agents.retrieval import Collection, Encoder, reciprocal_rank_fusion, tokenize
from shipyard.agents.tools import call_tool
from shipyard.agents.tools.search import SearchTool
from shipyard.data.document import Document
from shipyard.data.manifest import DatasetManifest, DocumentShard, write_manifest
from shipyard.errors import InvalidArgument, NotFound
from shipyard.storage import LocalStorage, from_local_path

DOCS = [
    Document("lyon", "Lyon is a city in France on the Rhône and the Saône.", {"title": "Lyon"}),
    Document("nile", "The Nile is the longest river in Africa.\n\nIt flows into the Mediterranean."),
    Document("beijing", "北京是中华人民共和国的首都，也是历史文化名城。"),
    Document("tea", "茶起源于中国，是世界上最受欢迎的饮料之一。"),
]


@pytest.fixture(scope="module")
def encoder() -> Encoder:
    return Encoder()


def test_tokenizer_splits_chinese_into_characters_and_bigrams() -> None:
    assert tokenize("The 首都 of China") == ["首", "都", "首都", "china"]


def test_bm25_finds_english_and_chinese_passages() -> None:
    collection = Collection.build("mixed", DOCS, encoder=None)
    assert [h.doc_id for h in collection.search("longest river", k=1, mode="bm25")] == ["nile"]
    assert [h.doc_id for h in collection.search("中国的首都是哪里", k=1, mode="bm25")] == ["beijing"]
    assert collection.search("zzzz", mode="bm25") == []
    with pytest.raises(InvalidArgument, match="mode"):
        collection.search("x", mode="fuzzy")  # type: ignore[arg-type]


def test_rrf_rewards_items_ranked_well_by_both_lists() -> None:
    fused = reciprocal_rank_fusion([[(1, 9.0), (2, 5.0)], [(2, 0.9), (3, 0.8)]], k=3)
    assert [item for item, _ in fused] == [2, 1, 3]
    assert reciprocal_rank_fusion([[(1, 1.0)], [(2, 1.0)]], k=2, weights=[1.0, 0.0])[0][0] == 1


@pytest.mark.slow
def test_dense_and_hybrid_search_and_persistence(encoder: Encoder, tmp_path: pathlib.Path) -> None:
    collection = Collection.build("mixed", DOCS, encoder=encoder)
    # No word in common with the passage: only the embedding can find it.
    assert (
        collection.search("which stream of water is the biggest in africa", k=1, mode="dense")[0].doc_id
        == "nile"
    )
    hits = collection.search("Which French city lies on the Saône?", k=2, mode="hybrid")
    assert hits[0].doc_id == "lyon" and hits[0].title == "Lyon" and "Rhône" in hits[0].text
    storage, uri = LocalStorage(), from_local_path(tmp_path / "coll")
    collection.save(storage, uri)
    loaded = Collection.load(storage, uri, encoder=encoder)
    assert len(loaded) == len(collection)
    assert [h.passage_id for h in loaded.search("tea origin China 茶", k=2)] == [
        h.passage_id for h in collection.search("tea origin China 茶", k=2)
    ]
    result = call_tool(SearchTool(loaded), {"query": "首都", "k": 1})
    assert result.content.startswith("[1] (beijing) 北京是")
    with pytest.raises(NotFound, match="no collection"):
        Collection.load(storage, from_local_path(tmp_path / "missing"), encoder=encoder)


def test_collection_from_an_ingest_manifest(tmp_path: pathlib.Path) -> None:
    storage = LocalStorage()
    root = from_local_path(tmp_path / "dataset")
    shard = tmp_path / "dataset" / "documents-00000.jsonl"
    shard.parent.mkdir()
    shard.write_text("".join(json.dumps(d.to_dict()) + "\n" for d in DOCS), encoding="utf-8")
    manifest = DatasetManifest(
        name="wiki",
        uri=root,
        document_shards=[
            DocumentShard(uri="documents-00000.jsonl", documents=len(DOCS), bytes=shard.stat().st_size)
        ],
        num_documents=len(DOCS),
    )
    write_manifest(storage, manifest)
    collection = Collection.from_manifest(storage, root, encoder=None)
    assert collection.name == "wiki"
    # The Nile document's two paragraphs fit one passage.
    assert [p.id for p in collection.passages] == ["lyon#0", "nile#0", "beijing#0", "tea#0"]
    result = call_tool(SearchTool(collection), {"query": "Mediterranean"})
    assert result.data[0].doc_id == "nile" and result.error is None
    assert call_tool(SearchTool(collection), {"query": "x", "k": 99}).error is not None
