"""Columnar readers: parquet files (streamed by record batch) and HF datasets saved with ``save_to_disk``.

Positions in ids are row indices. A parquet file that cannot be opened, or that lacks the text column,
is quarantined once as a whole (one entry, not one per row).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING, Any

from shipyard.data.document import Document
from shipyard.data.step import ShardContext
from shipyard.errors import InvalidArgument

if TYPE_CHECKING:
    from shipyard.data.steps.readers import InputReader

__all__ = ["read_hf_dataset", "read_parquet"]

_BATCH_ROWS = 1024


def read_parquet(reader: InputReader, uri: str, ctx: ShardContext) -> Iterator[Document]:
    """Documents of one parquet file, one record batch in memory at a time."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    with ctx.storage.open_read(uri) as raw:
        f: IO[bytes] = raw
        if not raw.seekable():
            # Parquet's footer is at the end; a non-seekable stream (an S3 body) has to be buffered.
            f = io.BytesIO(raw.read())
        try:
            pf = pq.ParquetFile(f)
        except (pa.ArrowInvalid, OSError) as exc:
            ctx.quarantine(f"{uri}:file", "", f"invalid_parquet: {exc}")
            return
        if reader.spec.text_field not in pf.schema_arrow.names:
            ctx.quarantine(
                f"{uri}:file", str(pf.schema_arrow), f"missing_text_field:{reader.spec.text_field}"
            )
            return
        row = 0
        try:
            for batch in pf.iter_batches(batch_size=_BATCH_ROWS):
                ctx.check_cancelled()
                for record in batch.to_pylist():
                    doc = reader.make_document(record, uri, row, ctx)
                    row += 1
                    if doc is not None:
                        yield doc
        except (pa.ArrowInvalid, OSError) as exc:
            # A corrupt row group: keep what was read, record the rest of the file as lost.
            ctx.quarantine(f"{uri}:{row}", "", f"invalid_parquet_row_group: {exc}")


def read_hf_dataset(reader: InputReader, uri: str, ctx: ShardContext) -> Iterator[Document]:
    """Documents of a ``Dataset`` (or every split of a ``DatasetDict``) saved with ``save_to_disk``."""
    import datasets

    path = ctx.storage.local_path(uri)
    if path is None:
        raise InvalidArgument.field(
            f"{reader.field}.uri",
            f"{uri}: HF datasets saved with save_to_disk can only be read from a local path; "
            "copy it locally or convert it to parquet",
        )
    loaded = datasets.load_from_disk(path)
    splits: list[tuple[str, Any]] = (
        sorted(loaded.items()) if isinstance(loaded, datasets.DatasetDict) else [("", loaded)]
    )
    for split, ds in splits:
        row = 0
        for batch in ds.iter(batch_size=_BATCH_ROWS):
            ctx.check_cancelled()
            columns = list(batch)
            n = len(batch[columns[0]]) if columns else 0
            for i in range(n):
                record = {c: batch[c][i] for c in columns}
                pos = f"{split}/{row}" if split else row
                doc = reader.make_document(record, uri, pos, ctx)
                row += 1
                if doc is not None:
                    if split:
                        doc.metadata.setdefault("split", split)
                    yield doc
