"""Readers: every input format, byte-range sharding, ids, quarantine of malformed records."""

from __future__ import annotations

import gzip
import json
import pathlib

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pydantic import ValidationError

from shipyard.data.step import ShardContext
from shipyard.data.steps.readers import InputSpec, make_reader
from shipyard.errors import InvalidArgument, NotFound


def read_all(spec: InputSpec, ctx: ShardContext) -> list:
    reader = make_reader(spec)
    return [doc for shard in reader.shards(ctx.storage) for doc in reader.read(shard, ctx)]


def test_text_paragraphs_of_a_crlf_book(shared_data: pathlib.Path, shard_ctx: ShardContext) -> None:
    docs = read_all(InputSpec(uri=str(shared_data / "corpus/books/pride_and_prejudice.en.txt")), shard_ctx)
    assert len(docs) > 2000
    assert all("\r" not in d.text and d.text.strip() for d in docs)
    opening = next(d for d in docs if d.text.startswith("It is a truth universally acknowledged"))
    assert "\n\n" not in opening.text
    assert opening.id.startswith("pride_and_prejudice.en.txt:")
    assert opening.metadata["source"].endswith("pride_and_prejudice.en.txt")


def test_byte_split_reads_the_same_documents_as_unsplit(
    shared_data: pathlib.Path, shard_ctx: ShardContext
) -> None:
    path = shared_data / "corpus/tinyshakespeare/input.txt"
    size = path.stat().st_size
    for split in ("paragraph", "line"):
        whole = read_all(InputSpec(uri=str(path), text_split=split), shard_ctx)
        spec = InputSpec(uri=str(path), text_split=split, shard_bytes=size // 3 + 1)
        reader = make_reader(spec)
        shards = reader.shards(shard_ctx.storage)
        assert len(shards) == 3 and shards[1].endswith(f"#bytes={size // 3 + 1}-{2 * (size // 3 + 1)}")
        parts = [doc for shard in shards for doc in reader.read(shard, shard_ctx)]
        assert [(d.id, d.text) for d in parts] == [(d.id, d.text) for d in whole]


def test_tiny_ranges_split_paragraphs_and_lines_exactly_once(tmp_path: pathlib.Path, shard_ctx) -> None:
    text = "".join(f"para {i} line a\r\npara {i} line b\r\n\r\n" for i in range(200))
    path = tmp_path / "small.txt"
    path.write_bytes(text.encode())
    whole = read_all(InputSpec(uri=str(path)), shard_ctx)
    split = read_all(InputSpec(uri=str(path), shard_bytes=1024), shard_ctx)
    assert len(whole) == 200 and [d.text for d in split] == [d.text for d in whole]
    assert whole[7].text == "para 7 line a\npara 7 line b"


def test_jsonl_gz_and_directory_glob(tmp_path: pathlib.Path, shard_ctx: ShardContext) -> None:
    root = tmp_path / "in"
    (root / "sub").mkdir(parents=True)
    with gzip.open(root / "sub" / "a.jsonl.gz", "wt") as f:
        for i in range(3):
            f.write(json.dumps({"text": f"doc {i}", "lang": "en", "uid": f"u{i}"}) + "\n")
    (root / "b.parquet").write_bytes(b"")  # excluded by the glob below
    docs = read_all(InputSpec(uri=f"file://{root}", glob="**/*.jsonl.gz", id_field="uid"), shard_ctx)
    assert [(d.id, d.text, d.metadata["lang"]) for d in docs] == [
        ("u0", "doc 0", "en"),
        ("u1", "doc 1", "en"),
        ("u2", "doc 2", "en"),
    ]


def test_malformed_jsonl_lines_are_quarantined_and_the_rest_read(
    tmp_path: pathlib.Path, shard_ctx: ShardContext, recorded
) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_bytes(
        b'{"text": "good one"}\n'
        b"{not json\n"
        b'{"body": "no text field"}\n'
        b'{"text": 42}\n'
        b'["not", "an object"]\n'
        b'{"text": "caf\xe9 latin-1"}\n'
        b'{"text": "good two"}\n'
    )
    docs = read_all(InputSpec(uri=str(path)), shard_ctx)
    assert [d.text for d in docs] == ["good one", "good two"]
    reasons = recorded.reasons()
    assert len(reasons) == 5
    assert reasons[0].startswith("invalid_json")
    assert reasons[1:4] == ["missing_text_field:text", "text_field_not_a_string:text", "record_not_an_object"]
    assert reasons[4] == "invalid_utf8"
    assert recorded.quarantined[0][0].endswith("mixed.jsonl:21")  # byte offset of the bad line


def test_undecodable_text_line_is_quarantined(tmp_path: pathlib.Path, shard_ctx, recorded) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"first line\n\xff\xfe broken\nthird line\n")
    docs = read_all(InputSpec(uri=str(path), text_split="line"), shard_ctx)
    assert [d.text for d in docs] == ["first line", "third line"]
    assert recorded.reasons() == ["invalid_utf8"]


def test_parquet_streams_rows_and_quarantines_bad_ones(
    tmp_path: pathlib.Path, shard_ctx: ShardContext, recorded
) -> None:
    table = pa.table({"text": ["alpha", None, "gamma"] * 1000, "score": list(range(3000))})
    pq.write_table(table, tmp_path / "d.parquet", row_group_size=500)
    docs = read_all(InputSpec(uri=str(tmp_path / "d.parquet")), shard_ctx)
    assert len(docs) == 2000
    assert docs[1].id == "d.parquet:2" and docs[1].metadata["score"] == 2
    assert recorded.reasons().count("text_field_not_a_string:text") == 1000


def test_hf_dataset_saved_to_disk(tmp_path: pathlib.Path, shard_ctx: ShardContext) -> None:
    import datasets

    datasets.Dataset.from_dict({"text": ["one", "two", "three"], "label": [0, 1, 0]}).save_to_disk(
        str(tmp_path / "hf")
    )
    reader = make_reader(InputSpec(uri=str(tmp_path / "hf")))
    shards = reader.shards(shard_ctx.storage)
    docs = [d for s in shards for d in reader.read(s, shard_ctx)]
    assert [(d.id, d.text, d.metadata["label"]) for d in docs] == [
        ("hf:0", "one", 0),
        ("hf:1", "two", 1),
        ("hf:2", "three", 0),
    ]


def test_missing_input_names_the_field(tmp_path: pathlib.Path, shard_ctx: ShardContext) -> None:
    with pytest.raises(NotFound, match=r"spec\.input\.uri"):
        make_reader(InputSpec(uri=str(tmp_path / "nope"))).shards(shard_ctx.storage)


def test_hf_dataset_on_s3_needs_a_local_path(shard_ctx: ShardContext) -> None:
    class NotLocal(type(shard_ctx.storage)):  # the same storage, minus a local path (as S3 has)
        def local_path(self, uri: str) -> None:
            return None

    ctx = ShardContext(**{**shard_ctx.__dict__, "storage": NotLocal()})
    reader = make_reader(InputSpec(uri="/tmp/somewhere", format="hf_dataset"))
    with pytest.raises(InvalidArgument, match="local path"):
        list(reader.read("file:///tmp/somewhere", ctx))


def test_bad_spec_values_name_the_field() -> None:
    with pytest.raises(ValidationError, match="format"):
        InputSpec(uri="/x", format="csv")
    with pytest.raises(ValidationError, match="uri"):
        InputSpec(uri="ftp://host/x")
    with pytest.raises(ValidationError, match="shard_bytes"):
        InputSpec(uri="/x", shard_bytes=0)


@pytest.mark.integration
def test_s3_jsonl_byte_split_and_parquet(s3_env, shard_ctx: ShardContext, recorded) -> None:
    lines = [json.dumps({"text": f"record number {i} " + "x" * (i % 50)}) for i in range(3000)]
    lines[1234] = "{broken"
    s3_env.storage.write_bytes(f"{s3_env.root}/in/a.jsonl", ("\n".join(lines) + "\n").encode())
    buf = pa.BufferOutputStream()
    pq.write_table(pa.table({"text": ["p0", "p1"]}), buf)
    s3_env.storage.write_bytes(f"{s3_env.root}/in/b.parquet", buf.getvalue().to_pybytes())
    ctx = ShardContext(**{**shard_ctx.__dict__, "storage": s3_env.storage})
    reader = make_reader(InputSpec(uri=f"{s3_env.root}/in", shard_bytes=32 * 1024))
    shards = reader.shards(ctx.storage)
    assert len(shards) > 3 and shards[-1].endswith("b.parquet")
    docs = [d for s in shards for d in reader.read(s, ctx)]
    assert len(docs) == 2999 + 2 and len({d.id for d in docs}) == len(docs)
    assert docs[0].id == "a.jsonl:0" and docs[-1].id == "b.parquet:1"
    assert [r for r in recorded.reasons()] == [
        "invalid_json: Expecting property name enclosed in double quotes"
    ]
