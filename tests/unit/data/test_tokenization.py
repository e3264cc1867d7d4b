"""Tokenizer training (``train_tokenizer``) and tokenization + packing (``tokenize``) on the shared corpus.

Steps run against real ``LocalStorage`` in a temporary directory; ``run_global_step`` drives a global
step's three phases the way the executor does (collect on every shard, reduce once, apply).
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
from typing import Any

import numpy as np
import pytest
from pydantic import ValidationError
from transformers import AutoTokenizer

from shipyard.data.document import Document
from shipyard.data.step import GlobalContext, ShardContext
from shipyard.data.tokenization.hf_tokenizer import load_hf_tokenizer, load_tokenizer
from shipyard.data.tokenization.pack import SequencePacker, Tokenize, TokenizeParams, token_dtype
from shipyard.data.tokenization.train import (
    SAMPLE_FILE,
    TrainTokenizer,
    TrainTokenizerParams,
    save_hf_tokenizer,
    train_bpe_tokenizer,
)
from shipyard.errors import InvalidArgument, NotFound, from_pydantic
from shipyard.storage import LocalStorage, from_local_path, join

Outputs = list[tuple[str, str, dict[str, Any]]]
VOCAB = 2000


def corpus_docs(shared_data: pathlib.Path) -> list[Document]:
    """~2 MB: Shakespeare and Austen paragraphs (English, CRLF), Japanese, Chinese classics and poems."""
    corpus = shared_data / "corpus"
    docs: list[Document] = []
    files = ("tinyshakespeare/input.txt", "books/pride_and_prejudice.en.txt", "chinese_poetry/lunyu.zh.txt")
    for rel in files:
        text = (corpus / rel).read_bytes().decode("utf-8")
        sep = "\r\n\r\n" if "\r\n" in text else "\n\n"
        docs += [Document(f"{rel}#{i}", p) for i, p in enumerate(text.split(sep)) if p.strip()]
    with open(corpus / "chinese_poetry/poems.jsonl", encoding="utf-8") as f:
        for line in f:
            poem = json.loads(line)
            docs.append(Document(f"poem#{poem['id']}", poem["title"] + "\n" + "\n".join(poem["paragraphs"])))
    return docs


def shard_context(root: str, i: int, n: int, outputs: Outputs, stage: str) -> ShardContext:
    return ShardContext(
        shard_index=i,
        num_shards=n,
        storage=LocalStorage(),
        scratch_uri=join(root, "work", stage, f"shard-{i}"),
        global_uri=join(root, "work", stage, "global"),
        output_uri=join(root, "out"),
        quarantine=lambda source, raw, reason: pytest.fail(f"unexpected quarantine: {reason}"),
        add_output=lambda kind, uri, meta: outputs.append((kind, uri, meta)),
    )


def run_global_step(step: TrainTokenizer, shards: list[list[Document]], root: str) -> tuple[list, Outputs]:
    """Collect on every shard, reduce once, apply on every shard; returns the applied shards and outputs."""
    outputs: Outputs = []
    n = len(shards)
    ctxs = [shard_context(root, i, n, outputs, "train") for i in range(n)]
    collected = [list(step.collect(docs, ctx)) for docs, ctx in zip(shards, ctxs, strict=True)]
    gctx = GlobalContext(
        num_shards=n,
        storage=LocalStorage(),
        shard_scratch_uris=[c.scratch_uri for c in ctxs],
        global_uri=ctxs[0].global_uri,
        output_uri=ctxs[0].output_uri,
        add_output=lambda kind, uri, meta: outputs.append((kind, uri, meta)),
    )
    step.reduce(gctx)
    applied = [list(step.apply(docs, ctx)) for docs, ctx in zip(collected, ctxs, strict=True)]
    return applied, outputs


@pytest.fixture(scope="module")
def docs(shared_data: pathlib.Path) -> list[Document]:
    return corpus_docs(shared_data)


@pytest.fixture(scope="module")
def trained(docs: list[Document], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The corpus in three shards through train_tokenizer (vocabulary of 2000)."""
    root = from_local_path(tmp_path_factory.mktemp("train"))
    shards = [docs[i::3] for i in range(3)]
    step = TrainTokenizer(TrainTokenizerParams(vocab_size=VOCAB))
    applied, outputs = run_global_step(step, shards, root)
    return {"root": root, "shards": shards, "applied": applied, "outputs": outputs, "step": step}


def test_trained_tokenizer_loads_offline_with_autotokenizer_and_round_trips(trained: dict[str, Any]) -> None:
    [(kind, uri, meta)] = trained["outputs"]
    assert (kind, uri) == ("tokenizer", join(trained["root"], "out", "tokenizer"))
    hf = AutoTokenizer.from_pretrained(LocalStorage().local_path(uri), local_files_only=True)
    samples = [
        "First Citizen:\nBefore we proceed any further, hear me speak.\n",
        "It is a truth universally acknowledged,\r\n  that a single man  ",
        "子曰：「學而時習之，不亦說乎？有朋自遠方來，不亦樂乎？」",
        "吾輩は猫である。名前はまだ無い。 emoji 🚢 and tabs\t!",
    ]
    for text in samples:
        ids = hf.encode(text, add_special_tokens=False)
        assert hf.decode(ids) == text
        assert len(ids) < len(text.encode("utf-8"))  # merges were learned, not just bytes
    assert len(hf) == VOCAB == meta["vocab_size"]
    assert (hf.bos_token, hf.eos_token, hf.unk_token, hf.pad_token) == ("<s>", "</s>", "<unk>", "<pad>")
    assert (meta["bos_id"], meta["eos_id"], meta["unk_id"], meta["pad_id"]) == (0, 1, 2, 3)
    assert meta["type"] == "bpe"


def test_train_tokenizer_passes_documents_through_unchanged(trained: dict[str, Any]) -> None:
    assert trained["applied"] == trained["shards"]
    stats = trained["step"].stats
    assert stats.docs_in == stats.docs_out == sum(len(s) for s in trained["shards"])
    assert stats.extra["tokenizer_sample_bytes"] > 1_000_000


def test_training_is_deterministic_and_honours_vocab_size(
    docs: list[Document], tmp_path: pathlib.Path
) -> None:
    params = TrainTokenizerParams(vocab_size=600, min_frequency=3)
    texts = [d.text for d in docs[:3000]]
    first, second = train_bpe_tokenizer(iter(texts), params), train_bpe_tokenizer(iter(texts), params)
    storage = LocalStorage()
    for name, tok in (("a", first), ("b", second)):
        save_hf_tokenizer(tok, storage, from_local_path(tmp_path / name), params)
    assert (tmp_path / "a/tokenizer.json").read_bytes() == (tmp_path / "b/tokenizer.json").read_bytes()
    assert load_tokenizer(storage, from_local_path(tmp_path / "a")).get_vocab_size() == 600


def test_sample_bytes_caps_what_each_shard_contributes(docs: list[Document], tmp_path: pathlib.Path) -> None:
    step = TrainTokenizer(TrainTokenizerParams(vocab_size=300, sample_bytes=10_000))
    ctx = shard_context(from_local_path(tmp_path), 0, 1, [], "train")
    passed = list(step.collect(docs[:2000], ctx))
    sample = LocalStorage().read_bytes(join(ctx.scratch_uri, SAMPLE_FILE))
    assert passed == docs[:2000]
    assert 9_000 < len(sample) <= 10_000
    assert sample.decode("utf-8").startswith(docs[0].text)


def test_from_uri_adopts_an_existing_tokenizer(shared_data: pathlib.Path, tmp_path: pathlib.Path) -> None:
    mistral = str(shared_data / "tokenizer/mistral_7b_v1")
    step = TrainTokenizer(TrainTokenizerParams(from_uri=mistral))
    docs = [Document("a", "hello")]
    applied, outputs = run_global_step(step, [docs], from_local_path(tmp_path))
    [(kind, uri, meta)] = outputs
    assert applied == [docs]
    assert kind == "tokenizer" and uri == join(from_local_path(tmp_path), "out", "tokenizer")
    assert (meta["vocab_size"], meta["bos_id"], meta["eos_id"], meta["unk_id"], meta["pad_id"]) == (
        32000,
        1,
        2,
        0,
        None,
    )
    copied = sorted(p.name for p in (tmp_path / "out/tokenizer").iterdir())
    assert {"tokenizer.json", "tokenizer_config.json", "tokenizer.model"} <= set(copied)


def test_from_uri_that_is_not_a_tokenizer_is_not_found(tmp_path: pathlib.Path) -> None:
    step = TrainTokenizer(TrainTokenizerParams(from_uri=str(tmp_path / "nothing")))
    with pytest.raises(NotFound, match="from_uri: no tokenizer.json"):
        run_global_step(step, [[]], from_local_path(tmp_path))


@pytest.mark.parametrize(
    ("params", "field", "reason"),
    [
        ({"vocab_size": 100}, "vocab_size", "at least 261"),
        ({"eos_token": "<|end|>"}, "eos_token", "must be one of special_tokens"),
        ({"special_tokens": ["<s>", "<s>"], "eos_token": None}, "special_tokens", "duplicate"),
        ({"model": "unigram"}, "model", "bpe"),
    ],
)
def test_bad_train_params_name_the_field(params: dict[str, Any], field: str, reason: str) -> None:
    with pytest.raises(ValidationError) as exc:
        TrainTokenizerParams(**params)
    error = from_pydantic(exc.value)
    assert [v.field for v in error.violations] == [field]
    assert reason in error.violations[0].description


# --- tokenize ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_tokenizer_uri(docs: list[Document], tmp_path_factory: pytest.TempPathFactory) -> str:
    params = TrainTokenizerParams(vocab_size=1000)
    uri = from_local_path(tmp_path_factory.mktemp("tok"))
    save_hf_tokenizer(train_bpe_tokenizer((d.text for d in docs[:2000]), params), LocalStorage(), uri, params)
    return uri


def tokenize_shard(
    docs: list[Document], root: str, shard_index: int = 0, **params: Any
) -> tuple[Tokenize, list[Document], dict[str, Any], np.ndarray]:
    outputs: Outputs = []
    step = Tokenize(TokenizeParams(**params))
    ctx = shard_context(root, shard_index, shard_index + 1, outputs, "tokenize")
    passed = list(step.run(docs, ctx))
    [(kind, uri, meta)] = outputs
    assert kind == "tokens"
    assert uri == join(root, "out", "tokens", f"shard-{shard_index:05d}.npy")
    return step, passed, meta, np.load(LocalStorage().local_path(uri), mmap_mode="r")


def test_tokenize_packs_every_document_token_into_full_sequences(
    docs: list[Document], small_tokenizer_uri: str, tmp_path: pathlib.Path
) -> None:
    shard = [*docs[:300], Document("empty", ""), *docs[300:500]]
    step, passed, meta, rows = tokenize_shard(
        shard,
        from_local_path(tmp_path),
        shard_index=3,
        tokenizer_uri=small_tokenizer_uri,
        seq_len=64,
        batch_size=7,
    )
    tok = load_hf_tokenizer(LocalStorage(), small_tokenizer_uri)
    eos = tok.token_id("</s>")
    per_doc = [tok.tokenizer.encode(d.text, add_special_tokens=False).ids + [eos] for d in shard if d.text]
    stream = [t for ids in per_doc for t in ids]
    dropped = len(stream) % 64

    assert passed == shard  # documents pass through, the empty one too
    assert rows.dtype == np.uint16 and rows.shape == (len(stream) // 64, 64)
    assert rows.flatten().tolist() == stream[: rows.size]
    assert meta["sequences"] == rows.shape[0] and meta["tokens"] == rows.size
    assert step.stats.extra["tokens"] == rows.size == len(stream) - dropped
    assert step.stats.extra["tokens_dropped_remainder"] == meta["tokens_dropped_remainder"] == dropped
    assert step.stats.extra["documents_empty"] == 1
    assert tok.tokenizer.decode(rows[0].tolist()).startswith(shard[0].text[:100])
    starts = np.load(LocalStorage().local_path(meta["index_uri"]))
    expected_starts = np.cumsum([0] + [len(ids) for ids in per_doc[:-1]])
    assert starts.tolist() == [s for s in expected_starts.tolist() if s < rows.size]
    assert meta["documents"] == len(starts)


def test_tokenize_defaults_to_the_jobs_trained_tokenizer(trained: dict[str, Any]) -> None:
    shard = trained["shards"][0][:50]
    _, _, meta, rows = tokenize_shard(shard, trained["root"], seq_len=32, add_bos=True)
    assert meta["tokenizer_uri"] == join(trained["root"], "out", "tokenizer")
    assert rows[0][0] == 0  # <s>
    assert rows.shape[1] == 32 and rows.shape[0] > 10


def test_tokenize_with_the_mistral_tokenizer(
    docs: list[Document], shared_data: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    mistral = str(shared_data / "tokenizer/mistral_7b_v1")
    root = from_local_path(tmp_path)
    _, _, meta, rows = tokenize_shard(docs[:100], root, tokenizer_uri=mistral, seq_len=128)
    hf = AutoTokenizer.from_pretrained(mistral, local_files_only=True)
    assert meta["dtype"] == "uint16" and rows.dtype == np.uint16
    assert (meta["tokenizer_uri"], meta["vocab_size"], meta["eos_id"]) == (from_local_path(mistral), 32000, 2)
    first = hf.encode(docs[0].text, add_special_tokens=False)
    assert rows[0][len(first)] == hf.eos_token_id == 2  # </s> closes the first document
    assert hf.decode(rows[0].tolist()).startswith(docs[0].text[:80])


def test_tokenize_without_a_tokenizer_says_how_to_get_one(
    docs: list[Document], tmp_path: pathlib.Path
) -> None:
    with pytest.raises(NotFound, match="put a train_tokenizer step before tokenize or set tokenizer_uri"):
        tokenize_shard(docs[:5], from_local_path(tmp_path))


def test_token_dtype_widens_for_large_vocabularies() -> None:
    assert token_dtype(65535) == np.uint16
    assert token_dtype(65536) == np.uint32
    with pytest.raises(InvalidArgument, match="dtype"):
        token_dtype(100_000, "uint16")


def test_packer_flushes_in_chunks_and_drops_only_the_remainder() -> None:
    rows: list[np.ndarray] = []
    packer = SequencePacker(4, np.dtype(np.uint32), rows.append, flush_tokens=5)
    for doc in ([1, 2, 3], [4, 5, 6, 7, 8], [9], [10, 11]):
        packer.add(doc)
    assert packer.finish() == 3  # 11 tokens: two rows of 4, three dropped
    assert np.concatenate(rows).tolist() == [[1, 2, 3, 4], [5, 6, 7, 8]]
    assert packer.kept_doc_starts().tolist() == [0, 3]


@pytest.mark.integration
def test_tokenizer_and_token_shards_on_s3(
    docs: list[Document], shared_data: pathlib.Path, s3_env: Any
) -> None:
    """A job writing to S3 adopts a local tokenizer, packs a shard there and training reads it back."""
    from shipyard.data.manifest import DatasetManifest, TokenizerRef, TokenShard, open_token_shard

    storage, root = s3_env.storage, s3_env.root
    outputs: Outputs = []
    ctx = dataclasses.replace(shard_context(root, 0, 1, outputs, "s3"), storage=storage)
    gctx = GlobalContext(1, storage, [ctx.scratch_uri], ctx.global_uri, ctx.output_uri, ctx.add_output)
    step = TrainTokenizer(TrainTokenizerParams(from_uri=str(shared_data / "tokenizer/mistral_7b_v1")))
    list(step.collect(docs[:10], ctx))
    step.reduce(gctx)
    tokenizer_uri = join(root, "out", "tokenizer")
    assert load_tokenizer(storage, tokenizer_uri).get_vocab_size() == 32000

    passed = list(Tokenize(TokenizeParams(seq_len=64)).run(docs[:200], ctx))
    [(_, tok_uri, tok_meta), (_, shard_uri, meta)] = outputs
    assert passed == docs[:200] and tok_uri == tokenizer_uri
    manifest = DatasetManifest(
        name="s3",
        uri=join(root, "out"),
        tokenizer=TokenizerRef.from_output(tok_uri, tok_meta),
        seq_len=64,
        dtype=meta["dtype"],
        token_shards=[TokenShard.from_output(shard_uri, meta)],
        num_tokens=meta["tokens"],
        num_sequences=meta["sequences"],
    )
    rows = open_token_shard(storage, manifest, 0, verify=True)
    assert rows.shape == (meta["sequences"], 64) and meta["sequences"] > 10
    assert load_tokenizer(storage, tokenizer_uri).decode(rows[0].tolist()).startswith(docs[0].text[:50])
