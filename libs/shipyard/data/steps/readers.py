"""Input readers: turning ``spec.input`` (a URI, a format, a glob) into shards and shards into documents.

``InputSpec`` says what to read; ``make_reader`` builds the ``Reader`` the executor drives. A shard is
a descriptor string: a canonical object URI, optionally with a byte range
(``file:///x.jsonl#bytes=0-67108864``) when one large uncompressed text/jsonl file is split so several
workers can read it. Byte ranges are line aligned at read time (a range owns the records whose first
line *starts* inside it), so splitting never loses or duplicates a record.

Document ids are ``<path relative to the input root>:<position>``. The position is the byte offset
of the record's first line for text/jsonl (not the line number: a shard starting in the middle of a
file would have to count every line before it, and the id must not depend on how the file was split)
and the row index for parquet / HF datasets. ``id_field`` replaces it with the record's own id.

Format-specific parsing lives in ``readers_text`` (text, jsonl, jsonl.gz) and ``readers_columnar``
(parquet, HF ``save_to_disk`` datasets).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field, field_validator

from shipyard.data.document import Document
from shipyard.data.step import Reader, ShardContext, StepParams
from shipyard.errors import InvalidArgument, NotFound
from shipyard.storage import join, normalize, parent
from shipyard.storage.base import Storage

__all__ = [
    "DEFAULT_SHARD_BYTES",
    "InputReader",
    "InputSpec",
    "detect_format",
    "make_reader",
    "parse_shard",
    "truncate_raw",
]

DEFAULT_SHARD_BYTES = 64 * 1024 * 1024
# Files written by ``datasets.Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``.
HF_MARKERS = ("state.json", "dataset_info.json", "dataset_dict.json")
_RANGE_SEP = "#bytes="
MAX_QUARANTINE_CHARS = 10_000

FormatName = Literal["auto", "text", "jsonl", "parquet", "hf_dataset"]


class InputSpec(StepParams):
    """Where a pipeline's documents come from."""

    uri: str = Field(min_length=1, description="file, directory, file:// or s3:// URI")
    format: FormatName = Field("auto", description="auto picks by extension (or HF dataset directory)")
    glob: str = Field("**/*", min_length=1, description="which files of a directory to read")
    text_field: str = Field("text", min_length=1, description="jsonl/parquet/HF column holding the text")
    id_field: str | None = Field(None, min_length=1, description="column holding a stable id, if any")
    text_split: Literal["file", "paragraph", "line"] = Field(
        "paragraph", description="plain text: one document per file, blank-line paragraph, or line"
    )
    min_chars: int = Field(1, ge=0, description="records with fewer non-blank characters are skipped")
    shard_bytes: int = Field(
        DEFAULT_SHARD_BYTES,
        ge=1024,
        description="split big uncompressed text/jsonl files into ranges this large",
    )

    @field_validator("uri")
    @classmethod
    def _uri_is_valid(cls, v: str) -> str:
        try:
            return normalize(v)
        except InvalidArgument as exc:
            raise ValueError(exc.violations[0].description if exc.violations else exc.message) from exc


def detect_format(uri: str) -> str | None:
    """The reader format implied by a file name, or ``None`` when the extension is not one we read."""
    name = uri.lower()
    if name.endswith((".txt", ".md", ".text")):
        return "text"
    if name.endswith((".jsonl", ".jsonl.gz", ".ndjson", ".json", ".json.gz")):
        return "jsonl"
    if name.endswith((".parquet", ".pq")):
        return "parquet"
    return None


def parse_shard(shard: str) -> tuple[str, int, int | None]:
    """``(uri, start, end)`` of a shard descriptor; ``end`` is ``None`` for "to the end of the object"."""
    uri, sep, rng = shard.rpartition(_RANGE_SEP)
    if not sep:
        return shard, 0, None
    start, _, end = rng.partition("-")
    return uri, int(start), int(end)


def glob_regex(pattern: str) -> re.Pattern[str]:
    """Compile a ``**``-aware glob matched against ``/``-separated relative paths."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out) + r"\Z")


class InputReader(Reader):
    """Reads every format ``InputSpec`` allows, from any ``Storage``."""

    name = "input"

    def __init__(self, spec: InputSpec, *, field: str = "spec.input") -> None:
        self.spec = spec
        self.field = field
        self.root = spec.uri
        # Set by ``shards``: whether the root is one object (ids then use its base name).
        self._root_is_file: bool | None = None

    # -- shards ---------------------------------------------------------------------------------
    def shards(self, storage: Storage) -> list[str]:
        spec = self.spec
        if spec.format == "hf_dataset" or (spec.format == "auto" and self._is_hf_dataset(storage)):
            self._root_is_file = False
            return [self.root]
        if storage.exists(self.root):
            self._root_is_file = True
            files = [(self.root, self._single_size(storage))]
        else:
            self._root_is_file = False
            pattern = glob_regex(spec.glob)
            prefix = self.root.rstrip("/") + "/"
            files = [
                (o.uri, o.size)
                for o in storage.list(self.root)
                if pattern.match(o.uri[len(prefix) :]) and self._format_of(o.uri) is not None
            ]
            if not files:
                raise NotFound(
                    f"{self.field}.uri: nothing to read at {self.root}"
                    f" (no file matching glob {spec.glob!r} with a readable format)"
                )
        out: list[str] = []
        for uri, size in files:
            out.extend(self._split(uri, size))
        return sorted(out, key=_shard_sort_key)

    def _is_hf_dataset(self, storage: Storage) -> bool:
        return any(storage.exists(join(self.root, marker)) for marker in HF_MARKERS)

    def _single_size(self, storage: Storage) -> int | None:
        local = storage.local_path(self.root)
        if local is not None:
            return os.path.getsize(local)
        for info in storage.list(parent(self.root)):
            if info.uri == self.root:
                return info.size
        return None

    def _split(self, uri: str, size: int | None) -> list[str]:
        fmt = self._format_of(uri)
        splittable = (
            fmt in ("text", "jsonl")
            and not uri.lower().endswith(".gz")
            and not (fmt == "text" and self.spec.text_split == "file")
        )
        step = self.spec.shard_bytes
        if not splittable or size is None or size <= step:
            return [uri]
        return [f"{uri}{_RANGE_SEP}{start}-{min(start + step, size)}" for start in range(0, size, step)]

    def _format_of(self, uri: str) -> str | None:
        return self.spec.format if self.spec.format != "auto" else detect_format(uri)

    # -- read -----------------------------------------------------------------------------------
    def relative_path(self, uri: str) -> str:
        """The path used in document ids: relative to the input directory, or the file's name."""
        if uri == self.root or self._root_is_file:
            return uri.rstrip("/").rpartition("/")[2]
        prefix = self.root.rstrip("/") + "/"
        return uri[len(prefix) :] if uri.startswith(prefix) else uri

    def read(self, shard: str, ctx: ShardContext) -> Iterator[Document]:
        from shipyard.data.steps import readers_columnar, readers_text

        uri, start, end = parse_shard(shard)
        if self._root_is_file is None:
            self._root_is_file = ctx.storage.exists(self.root)
        if self.spec.format == "hf_dataset" or (uri == self.root and self._is_hf_dataset(ctx.storage)):
            yield from readers_columnar.read_hf_dataset(self, uri, ctx)
            return
        fmt = self._format_of(uri)
        if fmt == "text":
            yield from readers_text.read_text(self, uri, start, end, ctx)
        elif fmt == "jsonl":
            yield from readers_text.read_jsonl(self, uri, start, end, ctx)
        elif fmt == "parquet":
            yield from readers_columnar.read_parquet(self, uri, ctx)
        else:
            raise InvalidArgument.field(f"{self.field}.format", f"cannot tell the format of {uri}")

    def make_document(self, record: object, uri: str, pos: int | str, ctx: ShardContext) -> Document | None:
        """A ``Document`` from one parsed record (jsonl object, parquet/HF row), or ``None`` if unusable.

        Malformed records are quarantined with a reason; records shorter than ``min_chars`` are skipped.
        Other fields go to ``metadata`` (a ``metadata`` object is merged, so our own output reads back).
        """
        source = f"{uri}:{pos}"
        spec = self.spec
        if not isinstance(record, dict):
            ctx.quarantine(source, truncate_raw(record), "record_not_an_object")
            return None
        text = record.get(spec.text_field)
        if spec.text_field not in record:
            ctx.quarantine(source, truncate_raw(record), f"missing_text_field:{spec.text_field}")
            return None
        if not isinstance(text, str):
            ctx.quarantine(source, truncate_raw(record), f"text_field_not_a_string:{spec.text_field}")
            return None
        if len(text.strip()) < spec.min_chars:
            return None
        if spec.id_field is not None:
            doc_id = record.get(spec.id_field)
            if doc_id is None or isinstance(doc_id, (dict, list)):
                ctx.quarantine(source, truncate_raw(record), f"missing_id_field:{spec.id_field}")
                return None
            doc_id = str(doc_id)
        else:
            doc_id = f"{self.relative_path(uri)}:{pos}"
        metadata: dict[str, Any] = {}
        for key, value in record.items():
            if key in (spec.text_field, spec.id_field):
                continue
            if key == "metadata" and isinstance(value, dict):
                metadata.update(value)
            else:
                metadata[key] = value
        metadata.setdefault("source", uri)
        return Document(id=doc_id, text=text, metadata=metadata)


def truncate_raw(raw: object) -> str:
    """A record as quarantine stores it: JSON-ish text, capped so one huge record cannot flood it."""
    text = raw if isinstance(raw, str) else json.dumps(raw, ensure_ascii=False, default=str)
    return text if len(text) <= MAX_QUARANTINE_CHARS else text[:MAX_QUARANTINE_CHARS] + "…[truncated]"


def _shard_sort_key(shard: str) -> tuple[str, int]:
    uri, start, _ = parse_shard(shard)
    return uri, start


def make_reader(spec: InputSpec, *, field: str = "spec.input") -> InputReader:
    """The reader for ``spec``; ``field`` is where the spec sits, for error messages."""
    return InputReader(spec, field=field)
