"""Tracing: builds the OpenTelemetry ``TracerProvider`` a service records its spans with.

The provider is returned, not installed: code that needs spans takes a provider (or falls back to the
OTel API's global one), so tests can run a provider with an ``InMemorySpanExporter`` side by side with
anything else. ``install_tracer_provider`` is the one place a ``__main__`` makes it global.
"""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from shipyard.telemetry.resource import service_resource


def create_tracer_provider(
    service_name: str,
    *,
    exporter: SpanExporter | None = None,
    synchronous: bool = False,
    resource_attributes: Mapping[str, str] | None = None,
) -> TracerProvider:
    """A provider whose spans carry ``service.name``; ``exporter`` receives finished spans.

    ``synchronous=True`` exports each span as it ends (what an ``InMemorySpanExporter`` in a test
    wants); otherwise spans are batched off the request path. Without an exporter spans are still
    created (so trace ids reach logs and downstream calls) but go nowhere.
    """
    provider = TracerProvider(resource=service_resource(service_name, resource_attributes))
    if exporter is not None:
        processor = SimpleSpanProcessor(exporter) if synchronous else BatchSpanProcessor(exporter)
        provider.add_span_processor(processor)
    return provider


def install_tracer_provider(provider: TracerProvider) -> None:
    """Make ``provider`` the process-wide default (OTel allows this once per process)."""
    trace.set_tracer_provider(provider)


def tracer(name: str, provider: trace.TracerProvider | None = None) -> trace.Tracer:
    """A tracer named after the instrumenting module, from ``provider`` or the global default."""
    if provider is None:
        return trace.get_tracer(name)
    return provider.get_tracer(name)


def current_trace_ids() -> tuple[str | None, str | None]:
    """The current (trace id, span id) as lowercase hex, or ``(None, None)`` outside a span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None, None
    return trace.format_trace_id(ctx.trace_id), trace.format_span_id(ctx.span_id)
