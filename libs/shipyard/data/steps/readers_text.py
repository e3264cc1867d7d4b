"""Line-oriented readers: plain text (file / paragraph / line documents) and JSON lines (optionally gzip).

Both walk the object as ``(byte offset, raw line)`` pairs so a shard can cover a byte range. The
ownership rule: a range ``[start, end)`` owns the records whose first line starts inside it. To know
whether the first line it sees continues a paragraph begun in the previous range, a reader starts at
the beginning of the line *before* ``start`` (seeking backwards on seekable objects; non-seekable
streams such as S3 bodies are read from the beginning and the prefix is skipped).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

from shipyard.data.document import Document
from shipyard.data.step import ShardContext
from shipyard.data.steps.readers import truncate_raw

if TYPE_CHECKING:
    from shipyard.data.steps.readers import InputReader

__all__ = ["read_jsonl", "read_text"]

_BACKSCAN = 64 * 1024


def read_text(
    reader: InputReader, uri: str, start: int, end: int | None, ctx: ShardContext
) -> Iterator[Document]:
    """Documents of a plain-text shard, split as ``reader.spec.text_split`` says."""
    mode = reader.spec.text_split
    if mode == "file":
        with ctx.storage.open_read(uri) as f:
            raw = f.read()
        try:
            text = raw.decode("utf-8").lstrip("\ufeff")
        except UnicodeDecodeError as exc:
            ctx.quarantine(f"{uri}:0", truncate_raw(raw.decode("utf-8", "replace")), f"invalid_utf8: {exc}")
            return
        doc = _doc(reader, uri, 0, text.replace("\r\n", "\n"))
        if doc is not None:
            yield doc
        return

    para_off: int | None = None
    para: list[str] = []
    for off, line in _lines(ctx, uri, start, end):
        text = _decode(line, off)
        blank = text is not None and not text.strip()
        if mode == "line":
            if end is not None and off >= end:
                break
            if off < start or blank:
                continue
            if text is None:
                ctx.quarantine(f"{uri}:{off}", truncate_raw(line.decode("utf-8", "replace")), "invalid_utf8")
                continue
            doc = _doc(reader, uri, off, text)
            if doc is not None:
                yield doc
            continue
        # paragraph mode
        if blank:
            if para_off is not None:
                doc = _doc(reader, uri, para_off, "\n".join(para)) if para_off >= start else None
                if doc is not None:
                    yield doc
                para_off, para = None, []
            continue
        if para_off is None:
            if end is not None and off >= end:
                break
            para_off = off
        if text is None:
            if para_off >= start:
                ctx.quarantine(f"{uri}:{off}", truncate_raw(line.decode("utf-8", "replace")), "invalid_utf8")
            continue
        para.append(text)
    if para_off is not None and para_off >= start:
        doc = _doc(reader, uri, para_off, "\n".join(para))
        if doc is not None:
            yield doc


def read_jsonl(
    reader: InputReader, uri: str, start: int, end: int | None, ctx: ShardContext
) -> Iterator[Document]:
    """Documents of a JSON-lines shard; every malformed line is quarantined with its reason."""
    for off, line in _lines(ctx, uri, start, end):
        if end is not None and off >= end:
            break
        if off < start or not line.strip():
            continue
        source = f"{uri}:{off}"
        try:
            record = json.loads(line)
        except UnicodeDecodeError:
            ctx.quarantine(source, truncate_raw(line.decode("utf-8", "replace")), "invalid_utf8")
            continue
        except json.JSONDecodeError as exc:
            ctx.quarantine(source, truncate_raw(line.decode("utf-8", "replace")), f"invalid_json: {exc.msg}")
            continue
        doc = reader.make_document(record, uri, off, ctx)
        if doc is not None:
            yield doc


def _doc(reader: InputReader, uri: str, off: int, text: str) -> Document | None:
    if len(text.strip()) < reader.spec.min_chars:
        return None
    return Document(id=f"{reader.relative_path(uri)}:{off}", text=text, metadata={"source": uri})


def _decode(line: bytes, off: int) -> str | None:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text.rstrip("\r\n")
    return text.lstrip("\ufeff") if off == 0 else text


def _lines(ctx: ShardContext, uri: str, start: int, end: int | None) -> Iterator[tuple[int, bytes]]:
    """``(offset, line)`` from the start of the line before ``start`` (or 0) to the end of the object."""
    with ctx.storage.open_read(uri) as raw:
        f: IO[bytes] = raw
        if uri.lower().endswith(".gz"):
            f = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[assignment]
        pos = 0
        if start > 0 and f.seekable():
            pos = _line_start_before(f, start - 1)
            f.seek(pos)
        for count, line in enumerate(f, 1):
            yield pos, line
            pos += len(line)
            if count % 4096 == 0:
                ctx.check_cancelled()


def _line_start_before(f: IO[bytes], index: int) -> int:
    """Offset of the first byte of the line that contains byte ``index``."""
    hi = index
    while hi > 0:
        lo = max(0, hi - _BACKSCAN)
        f.seek(lo)
        k = f.read(hi - lo).rfind(b"\n")
        if k >= 0:
            return lo + k + 1
        hi = lo
    return 0
