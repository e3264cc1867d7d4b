"""Structured logs: JSON lines with trace ids and extras, a text format, idempotent setup."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry import trace

from shipyard.errors import InvalidArgument
from shipyard.telemetry import configure_logging, create_tracer_provider


@pytest.fixture
def restore_root_logger() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


pytestmark = pytest.mark.usefixtures("restore_root_logger")


def _lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_line_carries_service_trace_ids_and_extras() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", "ingest", stream=stream)
    tracer = create_tracer_provider("ingest").get_tracer("test")

    with tracer.start_as_current_span("work") as span:
        logging.getLogger("shipyard.ingest").info("shard %d done", 3, extra={"shard": 3, "uri": "s3://b/k"})
    logging.getLogger("shipyard.ingest").warning("outside any span")

    inside, outside = _lines(stream)
    ctx = span.get_span_context()
    assert inside["message"] == "shard 3 done"
    assert inside["level"] == "INFO"
    assert inside["logger"] == "shipyard.ingest"
    assert inside["service"] == "ingest"
    assert inside["trace_id"] == trace.format_trace_id(ctx.trace_id)
    assert inside["span_id"] == trace.format_span_id(ctx.span_id)
    assert inside["shard"] == 3 and inside["uri"] == "s3://b/k"
    assert inside["ts"].endswith("+00:00")
    assert outside["trace_id"] is None and outside["span_id"] is None


def test_extras_cannot_overwrite_core_fields_and_exceptions_are_included() -> None:
    stream = io.StringIO()
    configure_logging("DEBUG", "json", "svc", stream=stream)
    try:
        raise ValueError("bad shard")
    except ValueError:
        logging.getLogger("x").exception("failed", extra={"service": "spoofed"})

    (line,) = _lines(stream)
    assert line["service"] == "svc"
    assert "ValueError: bad shard" in line["exception"]


def test_configuring_twice_does_not_duplicate_lines() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "json", "svc", stream=io.StringIO())
    configure_logging("INFO", "json", "svc", stream=stream)
    logging.getLogger("x").info("once")
    assert len(_lines(stream)) == 1
    assert sum(getattr(h, "_shipyard", False) for h in logging.getLogger().handlers) == 1


def test_level_filters_lower_records() -> None:
    stream = io.StringIO()
    configure_logging("warning", "json", "svc", stream=stream)
    logging.getLogger("x").info("hidden")
    logging.getLogger("x").warning("shown")
    assert [line["message"] for line in _lines(stream)] == ["shown"]


def test_text_format_is_human_readable_with_extras_and_trace() -> None:
    stream = io.StringIO()
    configure_logging("INFO", "text", "svc", stream=stream)
    tracer = create_tracer_provider("svc").get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logging.getLogger("shipyard.x").info("hello", extra={"shard": 7})
    line = stream.getvalue().strip()
    assert " INFO    shipyard.x: hello shard=7 " in line
    assert f"[trace={trace.format_trace_id(span.get_span_context().trace_id)}]" in line
    assert not line.startswith("{")


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"level": "LOUD"}, "log_level"), ({"fmt": "xml"}, "log_format")],
)
def test_bad_settings_name_the_field(kwargs: dict, field: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        configure_logging(**kwargs)
    assert info.value.violations[0].field == field
