"""Loading a task's split into ``Sample``s from local paths or storage URIs, skipping malformed rows.

Paths in task files are relative to a data root chosen at run time (``/work/shared/data/eval`` in tests,
``s3://bucket/eval`` in a cluster); an absolute URI in a task file is used as is. Nothing is downloaded
from a hub. A row that cannot be parsed, lacks a mapped field or fails its processor is skipped and
counted, with the first few reasons kept for the report; only an unreadable file is an error.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.errors import InvalidArgument
from shipyard.evaluation.tasks.processors import PROCESSORS, MalformedRow
from shipyard.evaluation.tasks.spec import DataFormat, SplitSource, TaskSpec
from shipyard.evaluation.types import OutputType, Sample
from shipyard.storage import Storage, join, open_storage

__all__ = ["LoadedSplit", "SkippedRow", "load_split", "split_uri"]

MAX_SKIPPED_EXAMPLES = 5


@dataclass(frozen=True)
class SkippedRow:
    """One malformed row: its 0-based position in the file and why it was skipped."""

    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


@dataclass(frozen=True)
class LoadedSplit:
    """The usable samples of one split, and how many rows were skipped (with the first few reasons)."""

    task: str
    split: str
    uri: str
    samples: tuple[Sample, ...]
    num_skipped: int = 0
    skipped_examples: tuple[SkippedRow, ...] = ()


def split_uri(source: SplitSource, data_root: str) -> str:
    """Where a split's file lives: ``source.path`` under ``data_root`` unless it is already a URI."""
    return source.path if "://" in source.path else join(data_root, source.path)


# A parsed row, or the reason the file's row could not be parsed.
_Row = tuple[int, Mapping[str, Any] | str]


def _rows(text: str, source: SplitSource, uri: str) -> Iterator[_Row]:
    if source.format is DataFormat.JSONL:
        for i, line in enumerate(text.splitlines()):
            if not line.strip():
                continue
            try:
                yield i, json.loads(line)
            except json.JSONDecodeError as exc:
                yield i, f"not valid JSON ({exc.msg} at column {exc.colno})"
    elif source.format is DataFormat.JSON:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument.field("data", f"{uri} is not valid JSON: {exc}") from exc
        if not isinstance(data, list):
            raise InvalidArgument.field("data", f"{uri} must hold a JSON array of objects")
        yield from enumerate(data)
    else:
        reader = csv.reader(io.StringIO(text, newline=""))
        header = list(source.columns) if source.columns else next(reader, [])
        for i, cells in enumerate(reader):
            if len(cells) != len(header):
                yield i, f"expected {len(header)} columns, found {len(cells)}"
            else:
                yield i, dict(zip(header, cells, strict=True))


def _to_doc(task: TaskSpec, raw: Mapping[str, Any] | str) -> dict[str, Any]:
    if isinstance(raw, str):
        raise MalformedRow(raw)
    if not isinstance(raw, Mapping):
        raise MalformedRow(f"expected an object, found {type(raw).__name__}")
    missing = [f"{name!r} (from {src!r})" for name, src in task.fields.items() if raw.get(src) is None]
    if missing:
        raise MalformedRow(f"missing field {', '.join(missing)}")
    # Unmapped keys ride along so processors can use optional columns (hellaswag's ctx_a/ctx_b).
    doc: dict[str, Any] = {**raw, **{name: raw[src] for name, src in task.fields.items()}}
    if task.process is not None:
        doc = PROCESSORS[task.process](doc)
    if task.output_type is OutputType.MULTIPLE_CHOICE:
        _check_choices(task, doc)
    return doc


def _check_choices(task: TaskSpec, doc: Mapping[str, Any]) -> None:
    literal = task.doc_to_choice
    choices = literal if isinstance(literal, tuple) else doc.get(literal or "choices")
    if not isinstance(choices, list | tuple) or len(choices) < 2:
        raise MalformedRow("needs at least two choices")
    gold = doc.get(task.gold_field)
    if isinstance(gold, list):
        if len(gold) != len(choices):
            raise MalformedRow("one label per choice is needed")
    elif not isinstance(gold, int) or not 0 <= gold < len(choices):
        raise MalformedRow(f"gold answer {gold!r} is not a valid choice index")


def load_split(
    task: TaskSpec,
    split: str = "test",
    *,
    data_root: str,
    storage: Storage | None = None,
    limit: int | None = None,
) -> LoadedSplit:
    """Read ``task``'s ``split`` (``test`` or ``fewshot``); ``limit`` keeps the first N usable samples.

    Sample ids are ``<task>/<split>/<row>`` so they stay stable when rows before them are malformed.
    Raises ``InvalidArgument`` for a split the task does not have, ``NotFound`` for a missing file.
    """
    source = task.splits.get(split)  # type: ignore[call-overload]
    if source is None:
        raise InvalidArgument.field("split", f"task {task.name!r} has no {split!r} split")
    if limit is not None and limit < 0:
        raise InvalidArgument.field("limit", "must be >= 0")
    uri = split_uri(source, data_root)
    data = (storage or open_storage(uri, field="data_root")).read_bytes(uri)
    if source.path.endswith(".gz"):
        data = gzip.decompress(data)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidArgument.field("data", f"{uri} is not UTF-8 text: {exc}") from exc

    samples: list[Sample] = []
    skipped: list[SkippedRow] = []
    num_skipped = 0
    for row, raw in _rows(text, source, uri):
        if limit is not None and len(samples) >= limit:
            break
        try:
            doc = _to_doc(task, raw)
        except (MalformedRow, KeyError, TypeError, ValueError) as exc:
            num_skipped += 1
            if len(skipped) < MAX_SKIPPED_EXAMPLES:
                reason = str(exc) if not isinstance(exc, KeyError) else f"missing key {exc}"
                skipped.append(SkippedRow(row, reason))
            continue
        samples.append(Sample(id=f"{task.name}/{split}/{row}", doc=doc))
    return LoadedSplit(task.name, split, uri, tuple(samples), num_skipped, tuple(skipped))
