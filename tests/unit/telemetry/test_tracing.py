"""Tracing: providers name the service and hand finished spans to the given exporter."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shipyard.telemetry import create_tracer_provider, current_trace_ids, tracer


def test_spans_carry_service_name_and_reach_the_exporter() -> None:
    exporter = InMemorySpanExporter()
    provider = create_tracer_provider("eval", exporter=exporter, synchronous=True)
    with tracer("shipyard.eval", provider).start_as_current_span("score") as span:
        trace_id, span_id = current_trace_ids()

    (finished,) = exporter.get_finished_spans()
    assert finished.name == "score"
    assert finished.resource.attributes["service.name"] == "eval"
    assert trace_id == f"{span.get_span_context().trace_id:032x}"
    assert span_id == f"{span.get_span_context().span_id:016x}"
    assert current_trace_ids() == (None, None)
