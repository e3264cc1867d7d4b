"""WriteDocuments: every format round-trips through read_documents and declares its output."""

from __future__ import annotations

import pytest

from shipyard.data.document import Document
from shipyard.data.step import ShardContext
from shipyard.data.steps.writers import WriteDocuments, read_documents


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "parquet"])
def test_round_trip_and_output_declared(fmt: str, shard_ctx: ShardContext, recorded) -> None:
    docs = [Document(f"d{i}", f"text {i} 日本語", {"language": "ja", "n": i}) for i in range(2500)]
    step = WriteDocuments(WriteDocuments.Params(format=fmt))
    passed = list(step.run(iter(docs), shard_ctx))
    assert passed == docs
    [(kind, uri, meta)] = recorded.outputs
    assert kind == "documents" and uri.endswith(f"/out/data/shard-00000.{fmt}")
    assert meta["documents"] == 2500 and meta["bytes"] > 0
    back = list(read_documents(shard_ctx.storage, uri))
    assert [d.to_dict() for d in back] == [d.to_dict() for d in docs]
    assert step.stats.docs_out == 2500


def test_abandoned_write_leaves_no_file(shard_ctx: ShardContext, recorded) -> None:
    def failing():
        yield Document("a", "x")
        raise RuntimeError("upstream failed")

    step = WriteDocuments()
    with pytest.raises(RuntimeError):
        list(step.run(failing(), shard_ctx))
    assert recorded.outputs == []
    assert shard_ctx.storage.list(f"{shard_ctx.output_uri}/data") == []


def test_bad_format_is_a_validation_error() -> None:
    with pytest.raises(Exception, match="format"):
        WriteDocuments.Params(format="csv")


@pytest.mark.integration
def test_writes_to_s3(s3_env, shard_ctx: ShardContext, recorded) -> None:
    ctx = ShardContext(**{**shard_ctx.__dict__, "storage": s3_env.storage, "output_uri": s3_env.root})
    docs = [Document(str(i), f"text {i}") for i in range(10)]
    list(WriteDocuments(WriteDocuments.Params(format="parquet")).run(docs, ctx))
    [(_, uri, _meta)] = recorded.outputs
    assert uri == f"{s3_env.root}/data/shard-00000.parquet"
    assert [d.text for d in read_documents(s3_env.storage, uri)] == [d.text for d in docs]
