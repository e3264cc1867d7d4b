"""Structured logging: one JSON object per line for machines, a readable line for terminals.

Every record carries the service name and the current OpenTelemetry trace/span id, so a log line can be
found from a trace and vice versa. Fields passed with ``extra=`` become top-level JSON keys.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import IO, Any, Literal

from shipyard.errors import InvalidArgument
from shipyard.telemetry.tracing import current_trace_ids

LogFormat = Literal["json", "text"]

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",
    "trace_id",
    "span_id",
}
_CORE_FIELDS = ("ts", "level", "logger", "message", "service", "trace_id", "span_id")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class _TraceContextFilter(logging.Filter):
    """Stamps the active span's ids on each record (as ``trace_id``/``span_id``, None outside a span)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.trace_id, record.span_id = current_trace_ids()
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRS and not k.startswith("_")}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, service, trace_id, span_id, extras, exception."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        # Extras first, so a stray ``extra={"level": ...}`` can never overwrite a core field.
        entry: dict[str, Any] = _extras(record)
        entry.update(
            ts=dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            level=record.levelname,
            logger=record.name,
            message=record.getMessage(),
            service=self.service_name,
            trace_id=getattr(record, "trace_id", None),
            span_id=getattr(record, "span_id", None),
        )
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``12:00:00.123 INFO    shipyard.rpc: message key=value [trace=…]`` for humans at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        ts = dt.datetime.fromtimestamp(record.created).strftime("%H:%M:%S.%f")[:-3]
        parts = [f"{ts} {record.levelname:<7} {record.name}: {record.getMessage()}"]
        parts += [f"{k}={v}" for k, v in _extras(record).items()]
        trace_id = getattr(record, "trace_id", None)
        if trace_id:
            parts.append(f"[trace={trace_id}]")
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _parse_level(level: str | int) -> int:
    if isinstance(level, int):
        return level
    name = level.strip().upper()
    if name not in _LEVELS:
        choices = ", ".join(_LEVELS)
        raise InvalidArgument.field("log_level", f"unknown level {level!r}; choose one of {choices}")
    return logging.getLevelNamesMapping()[name]


def configure_logging(
    level: str | int = "INFO",
    fmt: LogFormat = "json",
    service_name: str = "shipyard",
    *,
    stream: IO[str] | None = None,
) -> logging.Handler:
    """Route the root logger to ``stream`` (stderr by default) in the chosen format; returns the handler.

    Idempotent: a previous handler installed by this function is replaced, never duplicated, so a
    service may reconfigure (e.g. after loading its config) without doubling every line.
    """
    if fmt not in ("json", "text"):
        raise InvalidArgument.field("log_format", f"unknown format {fmt!r}; choose 'json' or 'text'")
    numeric_level = _parse_level(level)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(service_name) if fmt == "json" else TextFormatter())
    handler.addFilter(_TraceContextFilter())
    handler._shipyard = True  # type: ignore[attr-defined]  # marks the handler as ours for idempotency

    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_shipyard", False)]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric_level)
    return handler
