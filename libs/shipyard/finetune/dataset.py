"""Loading a finetune dataset: read the file, parse and validate each record, tokenize, split.

Files: ``.jsonl`` / ``.jsonl.gz`` (one JSON object per line), ``.json`` / ``.json.gz`` (an array of
objects) and ``.parquet``, on any storage backend (``file://``, ``s3://``). A record's ``index`` is its
0-based position in the file; for JSON lines that is the line index (blank lines count), so the line an
editor shows is ``index + 1``.

Bad-record policy. A record is bad when it cannot be decoded (malformed JSON, bad UTF-8), matches no format,
misses a field or has one of the wrong type, has a role we do not know, does not alternate user/assistant
turns or does not end with an assistant turn, has an empty turn, is longer than ``max_len`` tokens with
``truncation="drop"``, or leaves nothing to train on. Every bad record is counted by reason
(``DataReport.reasons``) and the first five are kept with their index, field and an excerpt. Then:

- ``BadRecordPolicy.SKIP`` (default): bad records are dropped; loading fails with ``InvalidArgument``
  only if more than ``max_bad_fraction`` of all records are bad, or none is left;
- ``BadRecordPolicy.REJECT``: the first bad record fails the whole dataset with ``InvalidArgument``
  naming it (``data[12].output: missing_field: is missing``).

With ``fmt=AUTO`` the format is detected from the first decodable record and then held for the whole file,
so a stray record of another shape is reported as bad instead of silently trained differently.

The validation split holds ``validation_fraction`` of the kept records (at least one when the fraction is
positive and two or more records are kept), chosen by a ``seed``ed shuffle: the same file, seed and
fraction always give the same split. A plain-text document's chunks stay on the same side of the split.
"""

from __future__ import annotations

import contextlib
import enum
import gzip
import io
import json
import logging
import random
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import IO, Any, TypeVar

from shipyard.errors import FieldViolation, InvalidArgument
from shipyard.finetune.encode import (
    EncodedExample,
    TrainOn,
    Truncation,
    check_encoding_args,
    encode_conversation,
    encode_text,
)
from shipyard.finetune.formats import (
    Conversation,
    DataFormat,
    InvalidRecord,
    PlainText,
    PreferencePair,
    UnreadableRecord,
    detect_format,
    parse_record,
)
from shipyard.finetune.preference import EncodedPair, encode_pair
from shipyard.finetune.templates import ChatTemplate, resolve_template
from shipyard.storage.base import Storage

__all__ = ["BadRecord", "BadRecordPolicy", "DataReport", "FinetuneData", "load_finetune_data", "read_records"]

_log = logging.getLogger(__name__)
_E = TypeVar("_E", bound=enum.StrEnum)
_EXAMPLES_KEPT = 5
_EXCERPT_CHARS = 200


class BadRecordPolicy(enum.StrEnum):
    """What a bad record does to the dataset (see the module docstring)."""

    SKIP = "skip"
    REJECT = "reject"


@dataclass(frozen=True)
class BadRecord:
    """One bad record: its index in the file, the reason code, the field at fault and a short excerpt."""

    index: int
    reason: str
    excerpt: str
    field: str = ""
    detail: str = ""

    def __str__(self) -> str:
        where = f"record {self.index}" + (f" {self.field}" if self.field else "")
        return f"{where}: {self.reason}: {self.detail} ({self.excerpt})"


@dataclass
class DataReport:
    """What loading found: counts, reasons by code, the first few bad records."""

    format: DataFormat
    total: int = 0
    kept: int = 0
    bad: int = 0
    truncated: int = 0
    bad_examples: list[BadRecord] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    template: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy, for job status and lineage."""
        return asdict(self) | {"format": str(self.format)}


@dataclass
class FinetuneData:
    """Tokenized examples (``EncodedPair`` for preference data) split into train and validation."""

    train: list[EncodedExample | EncodedPair]
    validation: list[EncodedExample | EncodedPair]
    report: DataReport
    template: ChatTemplate | None = None


def read_records(storage: Storage, uri: str, *, field: str = "data") -> Iterator[tuple[int, object]]:
    """``(index, record)`` for each record of the file at ``uri``, streamed where the format allows.

    A JSON line that does not decode is yielded as an ``UnreadableRecord`` (so it is reported, not
    raised); a file that cannot be read at all raises ``InvalidArgument`` on ``field``.
    """
    name = uri.lower()
    try:
        if name.endswith((".jsonl", ".jsonl.gz", ".ndjson")):
            with _open(storage, uri) as f:
                yield from _json_lines(f)
        elif name.endswith((".json", ".json.gz")):
            with _open(storage, uri) as f:
                try:
                    rows = json.load(f)
                except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                    raise InvalidArgument.field(field, f"{uri} is not valid JSON: {exc}") from None
            if not isinstance(rows, list):
                raise InvalidArgument.field(field, f"{uri} must hold a JSON array of records")
            yield from enumerate(rows)
        elif name.endswith(".parquet"):
            yield from enumerate(_parquet_rows(storage, uri, field))
        else:
            raise InvalidArgument.field(
                field,
                f"{uri}: unsupported file type; expected .jsonl, .jsonl.gz, .json, .json.gz or .parquet",
            )
    except (OSError, EOFError, zlib.error) as exc:
        # gzip/parquet corruption surfaces as these; NotFound from storage is a ShipyardError and passes.
        raise InvalidArgument.field(field, f"{uri} cannot be read: {exc}") from None


@contextlib.contextmanager
def _open(storage: Storage, uri: str) -> Iterator[IO[bytes]]:
    # GzipFile does not close the file it wraps, so the storage handle gets its own ``with``.
    with storage.open_read(uri) as raw:
        if uri.lower().endswith(".gz"):
            with gzip.GzipFile(fileobj=raw, mode="rb") as unzipped:
                yield unzipped  # type: ignore[misc]  # GzipFile is a binary file object
        else:
            yield raw


def _json_lines(f: IO[bytes]) -> Iterator[tuple[int, object]]:
    for index, line in enumerate(f):
        if not line.strip():
            continue
        try:
            yield index, json.loads(line)
        except UnicodeDecodeError:
            yield (
                index,
                UnreadableRecord(
                    line.decode("utf-8", "replace")[:_EXCERPT_CHARS], f"line {index + 1}: not UTF-8"
                ),
            )
        except json.JSONDecodeError as exc:
            text = line.decode("utf-8", "replace").rstrip("\n")
            yield (
                index,
                UnreadableRecord(text, f"line {index + 1}: malformed JSON: {exc.msg} at column {exc.colno}"),
            )


def _parquet_rows(storage: Storage, uri: str, field: str) -> Iterator[dict[str, Any]]:
    import pyarrow as pa  # the data extra; imported here so JSON-only users never need it
    import pyarrow.parquet as pq

    local = storage.local_path(uri)
    source: Any = local if local is not None else io.BytesIO(storage.read_bytes(uri))
    try:
        for batch in pq.ParquetFile(source).iter_batches():
            yield from batch.to_pylist()
    except pa.ArrowException as exc:
        raise InvalidArgument.field(field, f"{uri} is not a readable Parquet file: {exc}") from None


def load_finetune_data(
    storage: Storage,
    uri: str,
    tokenizer: Any,
    *,
    max_len: int,
    fmt: DataFormat | str = DataFormat.AUTO,
    template: str | None = None,
    train_on: TrainOn = "assistant",
    policy: BadRecordPolicy | str = BadRecordPolicy.SKIP,
    max_bad_fraction: float = 0.1,
    validation_fraction: float = 0.05,
    seed: int = 0,
    truncation: Truncation = "drop",
    field_name: str = "data",
) -> FinetuneData:
    """Read, validate, tokenize and split the dataset at ``uri`` (policy: see the module docstring).

    ``template`` is a bundled name, Jinja source, or ``None`` for the tokenizer's own template (resolved
    only if the data has chat records, so plain text works with tokenizers that have none).
    """
    declared = _enum(DataFormat, fmt, "format")
    on_bad = _enum(BadRecordPolicy, policy, "policy")
    check_encoding_args(max_len=max_len, train_on=train_on, truncation=truncation)
    if not 0.0 <= max_bad_fraction <= 1.0:
        raise InvalidArgument.field("max_bad_fraction", f"must be within [0, 1], got {max_bad_fraction!r}")
    if not 0.0 <= validation_fraction < 1.0:
        raise InvalidArgument.field(
            "validation_fraction", f"must be within [0, 1), got {validation_fraction!r}"
        )
    chat_template = resolve_template(tokenizer, template) if template is not None else None
    locked: DataFormat | None = None if declared is DataFormat.AUTO else declared
    report = DataReport(format=declared)
    kept: list[list[EncodedExample | EncodedPair]] = []
    reasons: Counter[str] = Counter()
    for index, raw in read_records(storage, uri, field=field_name):
        report.total += 1
        try:
            if locked is None and isinstance(raw, Mapping):
                locked = detect_format(raw)
            parsed = parse_record(raw, locked or DataFormat.AUTO)
            if chat_template is None and not isinstance(parsed, PlainText):
                chat_template = resolve_template(tokenizer, template)
            encoded = _encode(parsed, tokenizer, chat_template, max_len, train_on, truncation)
        except InvalidRecord as exc:
            bad = BadRecord(index, exc.reason, _excerpt(raw), exc.field_path, exc.description)
            if on_bad is BadRecordPolicy.REJECT:
                raise InvalidArgument(
                    f"bad record in {uri} (policy: reject)",
                    violations=[FieldViolation(_path(field_name, bad), f"{bad.reason}: {bad.detail}")],
                ) from exc
            reasons[exc.reason] += 1
            report.bad += 1
            if len(report.bad_examples) < _EXAMPLES_KEPT:
                report.bad_examples.append(bad)
            continue
        report.truncated += sum(e.truncated for e in encoded)
        kept.append(encoded)
    report.kept = len(kept)
    report.reasons = dict(reasons.most_common())
    report.format = locked or declared
    report.template = chat_template.name if chat_template else None
    _check_enough(report, uri, field_name, max_bad_fraction)
    train, validation = _split(kept, validation_fraction, seed)
    _log.info(
        "finetune data %s: %d records, %d kept, %d bad %s, %d truncated; %d train / %d validation examples",
        uri,
        report.total,
        report.kept,
        report.bad,
        report.reasons,
        report.truncated,
        len(train),
        len(validation),
    )
    return FinetuneData(train, validation, report, chat_template)


def _encode(
    parsed: Conversation | PreferencePair | PlainText,
    tokenizer: Any,
    template: ChatTemplate | None,
    max_len: int,
    train_on: TrainOn,
    truncation: Truncation,
) -> list[EncodedExample | EncodedPair]:
    if isinstance(parsed, PlainText):
        chunks = encode_text(parsed.text, tokenizer, max_len=max_len)
        if not chunks:
            raise InvalidRecord("no_trainable_tokens", "text", "tokenizes to fewer than two tokens")
        return list(chunks)
    assert template is not None  # resolved by the caller for every chat record
    if isinstance(parsed, PreferencePair):
        return [encode_pair(parsed, tokenizer, template, max_len=max_len, truncation=truncation)]
    example = encode_conversation(
        parsed, tokenizer, template, max_len=max_len, train_on=train_on, truncation=truncation
    )
    return [example]


def _check_enough(report: DataReport, uri: str, field_name: str, max_bad_fraction: float) -> None:
    if report.total == 0:
        raise InvalidArgument.field(field_name, f"{uri} holds no records")
    if report.kept and report.bad <= max_bad_fraction * report.total:
        return
    summary = ", ".join(f"{reason}: {count}" for reason, count in report.reasons.items())
    why = (
        "no record is usable"
        if not report.kept
        else f"more than max_bad_fraction={max_bad_fraction:g} are bad"
    )
    raise InvalidArgument(
        f"{report.bad} of {report.total} records in {uri} are bad ({summary}); {why}",
        violations=[
            FieldViolation(
                f"{field_name}[{b.index}]" + (f".{b.field}" if b.field else ""), f"{b.reason}: {b.detail}"
            )
            for b in report.bad_examples
        ],
    )


def _split(
    kept: list[list[EncodedExample | EncodedPair]], fraction: float, seed: int
) -> tuple[list[EncodedExample | EncodedPair], list[EncodedExample | EncodedPair]]:
    n_val = round(len(kept) * fraction)
    if fraction > 0 and len(kept) >= 2:
        n_val = min(max(n_val, 1), len(kept) - 1)
    order = list(range(len(kept)))
    random.Random(seed).shuffle(order)
    held_out = set(order[:n_val])
    train = [e for i, group in enumerate(kept) if i not in held_out for e in group]
    validation = [e for i, group in enumerate(kept) if i in held_out for e in group]
    return train, validation


def _path(field_name: str, bad: BadRecord) -> str:
    return f"{field_name}[{bad.index}]" + (f".{bad.field}" if bad.field else "")


def _enum(kind: type[_E], value: object, name: str) -> _E:
    try:
        return kind(value)  # type: ignore[arg-type]  # any value: a bad one is reported below
    except ValueError:
        allowed = ", ".join(m.value for m in kind)
        raise InvalidArgument.field(name, f"unknown value {value!r}; expected one of: {allowed}") from None


def _excerpt(raw: object) -> str:
    text = raw.raw if isinstance(raw, UnreadableRecord) else json.dumps(raw, ensure_ascii=False, default=str)
    return text if len(text) <= _EXCERPT_CHARS else text[: _EXCERPT_CHARS - 1] + "…"
