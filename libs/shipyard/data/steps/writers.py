"""Writing a shard's documents (jsonl, jsonl.gz, parquet) and reading such files back.

``WriteDocuments`` streams: documents are written as they pass through (parquet in row-group batches),
inside one atomic ``open_write``, so a shard's file appears whole or not at all. Parquet stores
``metadata`` as a JSON string column because metadata keys differ between documents.
``read_documents`` iterates any of these files back; the executor uses it for intermediate files.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Iterator
from typing import IO, Any, Literal

from pydantic import Field

from shipyard.data.document import Document
from shipyard.data.step import PipelineStep, ShardContext, StepParams
from shipyard.storage import join
from shipyard.storage.base import Storage

__all__ = ["EXTENSIONS", "WriteDocuments", "read_documents"]

EXTENSIONS = {"jsonl": "jsonl", "jsonl.gz": "jsonl.gz", "parquet": "parquet"}
_ROW_GROUP = 1000


class _CountingWriter(io.RawIOBase):
    """Counts the bytes that reach storage (compressed size for gzip) while passing them on."""

    def __init__(self, inner: IO[bytes]) -> None:
        self.inner = inner
        self.count = 0

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        n = self.inner.write(b)
        n = len(b) if n is None else n
        self.count += n
        return n

    def tell(self) -> int:
        return self.count


class WriteDocuments(PipelineStep):
    """Write this shard's documents to ``<output_uri>/data/shard-<index>.<ext>`` and pass them on."""

    name = "write"

    class Params(StepParams):
        format: Literal["jsonl", "jsonl.gz", "parquet"] = Field("jsonl", description="output file format")
        subdir: str = Field("data", min_length=1, description="folder under the job output")

    params: Params

    def output_uri(self, ctx: ShardContext) -> str:
        ext = EXTENSIONS[self.params.format]
        return join(ctx.output_uri, self.params.subdir, f"shard-{ctx.shard_index:05d}.{ext}")

    def run(self, docs: Iterable[Document], ctx: ShardContext) -> Iterator[Document]:
        uri = self.output_uri(ctx)
        n = 0
        with ctx.storage.open_write(uri) as raw:
            counter = _CountingWriter(raw)
            sink = _sink(self.params.format, counter)
            try:
                for doc in docs:
                    self.stats.docs_in += 1
                    sink.send(doc)
                    n += 1
                    self.stats.docs_out += 1
                    yield doc
            finally:
                sink.close()
        self.stats.extra["bytes_written"] += counter.count
        ctx.add_output(
            "documents", uri, {"documents": n, "bytes": counter.count, "format": self.params.format}
        )


def _sink(fmt: str, out: _CountingWriter) -> Any:
    """A primed generator accepting documents via ``send``; ``close`` flushes and finishes the file."""
    gen = _parquet_sink(out) if fmt == "parquet" else _jsonl_sink(out, gzipped=fmt == "jsonl.gz")
    next(gen)
    return gen


def _jsonl_sink(out: _CountingWriter, *, gzipped: bool) -> Iterator[None]:
    stream: IO[bytes] = gzip.GzipFile(fileobj=out, mode="wb", mtime=0) if gzipped else out  # type: ignore[assignment]
    buffered = io.BufferedWriter(stream, buffer_size=1 << 20) if not gzipped else stream
    try:
        while True:
            doc = yield
            buffered.write(json.dumps(doc.to_dict(), ensure_ascii=False).encode("utf-8") + b"\n")
    finally:
        buffered.flush()
        if gzipped:
            stream.close()


def _parquet_sink(out: _CountingWriter) -> Iterator[None]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([("id", pa.string()), ("text", pa.string()), ("metadata", pa.string())])
    writer = pq.ParquetWriter(out, schema, compression="zstd")
    rows: dict[str, list[str]] = {"id": [], "text": [], "metadata": []}

    def flush() -> None:
        if rows["id"]:
            writer.write_table(pa.table(rows, schema=schema), row_group_size=_ROW_GROUP)
            for column in rows.values():
                column.clear()

    try:
        while True:
            doc = yield
            rows["id"].append(doc.id)
            rows["text"].append(doc.text)
            rows["metadata"].append(json.dumps(doc.metadata, ensure_ascii=False, default=str))
            if len(rows["id"]) >= _ROW_GROUP:
                flush()
    finally:
        flush()
        writer.close()


def read_documents(storage: Storage, uri: str) -> Iterator[Document]:
    """Iterate the documents of a file written by ``WriteDocuments`` (format from the extension)."""
    if uri.endswith(".parquet"):
        import pyarrow.parquet as pq

        with storage.open_read(uri) as raw:
            f: IO[bytes] = raw if raw.seekable() else io.BytesIO(raw.read())
            for batch in pq.ParquetFile(f).iter_batches(batch_size=_ROW_GROUP):
                for row in batch.to_pylist():
                    yield Document(
                        id=row["id"], text=row["text"], metadata=json.loads(row["metadata"] or "{}")
                    )
        return
    with storage.open_read(uri) as raw:
        stream: IO[bytes] = gzip.GzipFile(fileobj=raw, mode="rb") if uri.endswith(".gz") else raw  # type: ignore[assignment]
        for line in stream:
            if line.strip():
                yield Document.from_dict(json.loads(line))
