"""What an agent run reports: one OpenTelemetry span per step and per tool call, Prometheus metrics.

``AgentTelemetry`` registers into the registry it is given, or into one of its own (never the
process-global one, so two agents in one process never collide); a server renders ``registry``.
Spans come from ``shipyard.telemetry.tracer`` with the given provider (or the global one), so a trace
runs from the agents service's RPC through each step into the inference server's request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode
from prometheus_client import CollectorRegistry, Counter, Histogram

from shipyard.agents.events import ToolCall
from shipyard.telemetry import tracer

__all__ = ["AgentTelemetry"]

_TURN_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)
_STEP_BUCKETS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 64, 100)


class AgentTelemetry:
    def __init__(
        self,
        agent: str = "",
        *,
        registry: CollectorRegistry | None = None,
        tracer_provider: trace.TracerProvider | None = None,
    ) -> None:
        self.agent = agent
        self.registry = registry if registry is not None else CollectorRegistry()
        self._tracer = tracer(__name__, tracer_provider)
        r = self.registry
        p = "shipyard_agent_"
        self.tool_calls = Counter(p + "tool_calls", "Tool calls run, by tool.", ["agent", "tool"], registry=r)
        self.tool_failures = Counter(
            p + "tool_failures",
            "Tool calls that came back with an error, by tool.",
            ["agent", "tool"],
            registry=r,
        )
        self.parse_failures = Counter(
            p + "parse_failures",
            "Model outputs whose tool call could not be repaired.",
            ["agent"],
            registry=r,
        )
        self.turns = Counter(p + "turns", "Turns run, by how they ended.", ["agent", "outcome"], registry=r)
        self.steps = Histogram(
            p + "steps_per_turn", "Model calls in one turn.", ["agent"], registry=r, buckets=_STEP_BUCKETS
        )
        self.turn_latency = Histogram(
            p + "turn_latency_seconds", "Wall time of one turn.", ["agent"], registry=r, buckets=_TURN_BUCKETS
        )

    @contextmanager
    def step_span(self, step: int, protocol: str) -> Iterator[Span]:
        """The span of one model call and what follows from it (the tool calls are its children).

        Not made the current span: a step suspends at every event it yields, and a context attached in
        a generator would leak into the consumer's code. Tool spans name it as their parent instead.
        """
        span = self._tracer.start_span(
            "agent.step",
            attributes={"shipyard.agent": self.agent, "agent.step": step, "agent.protocol": protocol},
        )
        try:
            yield span
        except BaseException as exc:
            if not isinstance(exc, GeneratorExit):
                span.record_exception(exc)
            raise
        finally:
            span.end()

    @contextmanager
    def tool_span(self, call: ToolCall, parent: Span | None = None) -> Iterator[Span]:
        context = trace.set_span_in_context(parent) if parent is not None else None
        with self._tracer.start_as_current_span(
            f"agent.tool {call.name}",
            context=context,
            attributes={"shipyard.agent": self.agent, "agent.tool": call.name, "agent.tool_call_id": call.id},
        ) as span:
            yield span

    def tool_finished(self, span: Span, call: ToolCall, error: str | None, elapsed_s: float) -> None:
        self.tool_calls.labels(self.agent, call.name).inc()
        span.set_attribute("agent.tool.elapsed_s", elapsed_s)
        if error is not None:
            self.tool_failures.labels(self.agent, call.name).inc()
            span.set_status(Status(StatusCode.ERROR, error[:200]))

    def parse_failed(self) -> None:
        self.parse_failures.labels(self.agent).inc()

    def turn_finished(self, outcome: str, steps: int, elapsed_s: float) -> None:
        """``outcome``: ``answer`` or the limit/failure that ended the turn."""
        self.turns.labels(self.agent, outcome).inc()
        self.steps.labels(self.agent).observe(steps)
        self.turn_latency.labels(self.agent).observe(elapsed_s)
