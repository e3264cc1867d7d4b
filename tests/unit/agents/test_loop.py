"""The agent loop against a scripted model: tool calls, repair, retries, tool failures, limits."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shipyard.agents.events import AgentEvent
from shipyard.agents.loop import AgentLoop
from shipyard.agents.sessions.models import Message
from shipyard.agents.telemetry import AgentTelemetry
from shipyard.agents.tools.base import ToolContext, ToolResult, ToolSpec
from shipyard.agents.tools.calculator import Calculator
from shipyard.agents.tools.registry import ToolRegistry
from shipyard.errors import InvalidArgument, Unavailable
from shipyard.resources.agent import AgentLimits
from shipyard.telemetry import create_tracer_provider
from tests.unit.agents.scripted_model import Reply, ScriptedModel, call


class Exploding:
    spec = ToolSpec("explode", "Always fails.", {"type": "object", "properties": {}})

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        raise RuntimeError("the tool broke")


class Stuck:
    """Blocks until released: a tool that never answers in time."""

    spec = ToolSpec("stuck", "Never returns in time.", {"type": "object", "properties": {}})

    def __init__(self) -> None:
        self.release = threading.Event()

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        self.release.wait(30)
        return ToolResult("too late")


@pytest.fixture
def stuck() -> Iterator[Stuck]:
    tool = Stuck()
    yield tool
    tool.release.set()


def run(
    loop: AgentLoop, text: str = "What is 6 * 7?", **kwargs: Any
) -> tuple[list[AgentEvent], list[Message]]:
    kept: list[Message] = []
    events = list(loop.run([], text, on_message=kept.append, **kwargs))
    return events, kept


def kinds(events: list[AgentEvent]) -> list[str]:
    return [e.kind for e in events]


def well_formed(events: list[AgentEvent]) -> None:
    assert events and events[-1].terminal
    assert sum(e.terminal for e in events) == 1
    for e in events:
        if e.kind in ("tool_call", "tool_result"):
            assert e.tool_call is not None


def loop_with(model: ScriptedModel, *tools: Any, **kwargs: Any) -> AgentLoop:
    kwargs.setdefault("protocol", "function-calling")
    return AgentLoop(model, ToolRegistry(tools or [Calculator()]), **kwargs)


def test_tool_call_then_observation_then_answer() -> None:
    model = ScriptedModel([Reply(calls=(call("calculator", '{"expression": "6*7"}'),)), "The answer is 42."])
    events, kept = run(loop_with(model))
    well_formed(events)
    assert kinds(events) == ["tool_call", "tool_result", *["partial_answer"] * 5, "final_answer"]
    assert events[1].text == "42" and events[1].error is None
    assert "".join(e.text for e in events if e.kind == "partial_answer") == "The answer is 42."
    final = events[-1]
    assert final.text == "The answer is 42." and final.usage is not None
    assert (final.usage.model_calls, final.usage.completion_tokens) == (2, 20)
    # The model saw the tool's result as a tool message answering its call.
    second = model.requests[1].messages
    assert second[-1] == {"role": "tool", "content": "42", "name": "calculator", "tool_call_id": "call_1"}
    assert model.requests[0].tools[0]["function"]["name"] == "calculator"
    assert model.requests[0].tool_choice == "auto"
    # What is kept: user, assistant call, tool result, the answer with the turn's usage.
    assert [m.role for m in kept] == ["user", "assistant", "tool", "assistant"]
    assert kept[1].tool_calls and kept[1].tool_calls[0]["function"]["name"] == "calculator"
    assert kept[3].usage == {"prompt_tokens": 40, "completion_tokens": 20, "model_calls": 2}


def test_required_tool_choice_holds_until_the_first_call_then_the_model_may_answer() -> None:
    model = ScriptedModel([Reply(calls=(call("calculator", '{"expression": "6*7"}'),)), "42."])
    events, _ = run(loop_with(model, tool_choice="required"))
    assert events[-1].kind == "final_answer" and events[-1].text == "42."
    assert [r.tool_choice for r in model.requests] == ["required", "auto"]


def test_a_call_cut_off_by_max_tokens_is_neither_a_thought_nor_history() -> None:
    # What a server sends when the model repeats calls until max_tokens: the whole ones as tool_calls,
    # the unfinished one left in the text.
    cut = Reply(
        'Let me compute. <tool_call>\n{"name": "calculator", "arguments": {"expression": "6',
        calls=(call("calculator", '{"expression": "6*7"}'),),
    )
    model = ScriptedModel([cut, "42."])
    events, kept = run(loop_with(model))
    assert [e.text for e in events if e.kind == "thought"] == ["Let me compute."]
    assert kept[1].content == "Let me compute." and kept[1].tool_calls
    assert events[-1].kind == "final_answer"


def test_malformed_call_is_repaired_and_run() -> None:
    model = ScriptedModel(
        [
            Reply(calls=(call("Calculater", "{'expression': '6*7',"),)),
            "<tool_call>{'name': 'calculator', 'arguments': {'expression': '1+1'}",
            "Done: 42 and 2.",
        ]
    )
    events, _ = run(loop_with(model))
    results = [e for e in events if e.kind == "tool_result"]
    assert [(r.tool_call.name, r.tool_call.arguments, r.text) for r in results if r.tool_call] == [
        ("calculator", {"expression": "6*7"}, "42"),
        ("calculator", {"expression": "1+1"}, "2"),
    ]
    # A call written as text is not streamed to the user as answer text.
    assert [e.text for e in events if e.kind == "partial_answer"] == ["Done", ": 42", " and", " 2."]
    assert events[-1].kind == "final_answer"


def test_unrepairable_call_is_shown_to_the_model_and_retried() -> None:
    model = ScriptedModel(
        [
            "<tool_call>I would like to multiply</tool_call>",
            Reply(calls=(call("calculator", '{"expression": "6*7"}'),)),
            "42",
        ]
    )
    events, kept = run(loop_with(model))
    bad = [e for e in events if e.kind == "thought" and e.error]
    assert len(bad) == 1 and "not valid JSON" in (bad[0].error or "")
    retry_prompt = model.requests[1].messages
    assert retry_prompt[-2] == {
        "role": "assistant",
        "content": "<tool_call>I would like to multiply</tool_call>",
    }
    assert retry_prompt[-1]["role"] == "user" and "not valid JSON" in retry_prompt[-1]["content"]
    assert events[-1].kind == "final_answer" and events[-1].text == "42"
    # The failed attempt is not kept in the session: only well-formed calls are.
    assert [m.role for m in kept] == ["user", "assistant", "tool", "assistant"]


def test_a_tool_that_raises_is_an_observation_and_the_turn_goes_on() -> None:
    model = ScriptedModel([Reply(calls=(call("explode", "{}"),)), "It failed, sorry."])
    events, _ = run(loop_with(model, Exploding()))
    result = next(e for e in events if e.kind == "tool_result")
    assert result.error == "RuntimeError: the tool broke"
    assert model.requests[1].messages[-1]["content"] == "Error: RuntimeError: the tool broke"
    assert events[-1].kind == "final_answer"


def test_a_tool_that_times_out_is_an_observation(stuck: Stuck) -> None:
    model = ScriptedModel([Reply(calls=(call("stuck", "{}"),)), "It took too long."])
    events, _ = run(loop_with(model, stuck, tool_timeout_s=0.2))
    result = next(e for e in events if e.kind == "tool_result")
    assert "did not finish within 0.2 s" in (result.error or "")
    assert events[-1].kind == "final_answer"


def test_schema_invalid_arguments_come_back_naming_the_argument() -> None:
    model = ScriptedModel([Reply(calls=(call("calculator", '{"expr": "1"}'),)), "ok"])
    events, _ = run(loop_with(model))
    result = next(e for e in events if e.kind == "tool_result")
    assert "'expression' is a required property" in (result.error or "")


def test_step_limit_ends_the_turn_with_an_error_naming_it() -> None:
    looping = [Reply(calls=(call("calculator", '{"expression": "1"}', f"c{i}"),)) for i in range(3)]
    model = ScriptedModel(looping)
    events, _ = run(loop_with(model, limits=AgentLimits(max_steps=3)))
    well_formed(events)
    assert events[-1].kind == "error" and events[-1].error == "max_steps"
    assert "limits.max_steps = 3" in events[-1].text
    assert len(model.requests) == 3


def test_token_limit_ends_the_turn() -> None:
    model = ScriptedModel([Reply(calls=(call("calculator", '{"expression": "1"}'),), completion_tokens=40)])
    events, _ = run(loop_with(model, limits=AgentLimits(max_tokens=32, max_tokens_per_step=16)))
    assert model.requests[0].max_tokens == 16
    assert events[-1].kind == "error" and events[-1].error == "max_tokens"
    assert "limits.max_tokens = 32" in events[-1].text


def test_wall_time_limit_ends_the_turn() -> None:
    now = [0.0]

    class SlowModel(ScriptedModel):
        def stream(self, request: Any) -> Iterator[Any]:
            now[0] += 5.0  # each model call takes five (fake) seconds
            return super().stream(request)

    model = SlowModel([Reply(calls=(call("calculator", '{"expression": "1"}', f"c{i}"),)) for i in range(3)])
    loop = loop_with(model, limits=AgentLimits(wall_time_seconds=8), clock=lambda: now[0])
    events, _ = run(loop)
    assert events[-1].kind == "error" and events[-1].error == "wall_time"
    assert "limits.wall_time_seconds = 8" in events[-1].text
    assert len(model.requests) == 2


def test_cancel_stops_the_stream() -> None:
    cancel = threading.Event()
    model = ScriptedModel(["A long answer " * 20])
    loop = loop_with(model)
    events: list[AgentEvent] = []
    for event in loop.run([], "hi", cancel=cancel):
        events.append(event)
        if event.kind == "partial_answer":
            cancel.set()
    assert events[-1].kind == "error" and events[-1].error == "cancelled"
    assert sum(e.kind == "partial_answer" for e in events) == 1


def test_model_endpoint_failure_is_an_error_event() -> None:
    model = ScriptedModel([Unavailable("model endpoint unreachable: connection refused")])
    events, _ = run(loop_with(model))
    assert kinds(events) == ["error"]
    assert events[0].error == "model_error" and "connection refused" in events[0].text


def test_auto_falls_back_to_react_when_the_server_rejects_tools() -> None:
    model = ScriptedModel(
        [
            InvalidArgument("model endpoint rejected the request: tools is not supported"),
            'Thought: multiply\nAction: calculator\nAction Input: {"expression": "6*7"}',
            "Thought: I know\nFinal Answer: 42",
        ]
    )
    loop = loop_with(model, protocol="auto")
    events, _ = run(loop)
    assert loop.active_protocol == "react"
    assert events[-1].kind == "final_answer" and events[-1].text == "42"
    assert model.requests[0].tools and not model.requests[1].tools
    assert model.requests[1].stop == ("Observation:",)
    assert model.requests[2].messages[-1] == {"role": "user", "content": "Observation: 42"}
    assert events[-1].usage is not None and events[-1].usage.model_calls == 2  # the rejected call is free


def test_telemetry_counts_tools_and_spans_steps() -> None:
    exporter = InMemorySpanExporter()
    telemetry = AgentTelemetry(
        "calc-agent", tracer_provider=create_tracer_provider("agents", exporter=exporter, synchronous=True)
    )
    model = ScriptedModel(
        [
            Reply(
                calls=(
                    call("calculator", '{"expression": "6*7"}', "a"),
                    call("calculator", '{"expression": "1/0"}', "b"),
                )
            ),
            "42",
        ]
    )
    events, _ = run(loop_with(model, telemetry=telemetry))
    assert events[-1].kind == "final_answer"
    sample = telemetry.registry.get_sample_value
    assert sample("shipyard_agent_tool_calls_total", {"agent": "calc-agent", "tool": "calculator"}) == 2
    assert sample("shipyard_agent_tool_failures_total", {"agent": "calc-agent", "tool": "calculator"}) == 1
    assert sample("shipyard_agent_turns_total", {"agent": "calc-agent", "outcome": "answer"}) == 1
    assert sample("shipyard_agent_steps_per_turn_sum", {"agent": "calc-agent"}) == 2
    spans = exporter.get_finished_spans()
    steps = [s for s in spans if s.name == "agent.step"]
    tools = [s for s in spans if s.name == "agent.tool calculator"]
    assert len(steps) == 2 and len(tools) == 2
    assert {t.parent.span_id for t in tools if t.parent} == {steps[0].context.span_id}
