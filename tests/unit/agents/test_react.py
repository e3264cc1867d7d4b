"""The ReAct text protocol: the prompt, the parser (with repair), the stream, and history rendering."""

from __future__ import annotations

import pytest

from shipyard.agents.loop import AgentLoop
from shipyard.agents.react import (
    REACT_STOP,
    AnswerStream,
    parse_react,
    react_system_prompt,
    render_messages,
)
from shipyard.agents.tools.calculator import Calculator
from shipyard.agents.tools.registry import ToolRegistry
from shipyard.resources.agent import AgentLimits
from tests.unit.agents.scripted_model import ScriptedModel

REGISTRY = ToolRegistry([Calculator()])
SCHEMAS = {t["function"]["name"]: t["function"]["parameters"] for t in REGISTRY.openai_tools()}


def test_system_prompt_lists_each_tool_with_its_schema_and_the_format() -> None:
    prompt = react_system_prompt("You are terse.", REGISTRY.openai_tools())
    assert prompt.startswith("You are terse.")
    assert "- calculator: Evaluate an arithmetic expression" in prompt
    assert '"required": ["expression"]' in prompt
    for marker in ("Thought:", "Action:", "Action Input:", "Observation:", "Final Answer:"):
        assert marker in prompt


@pytest.mark.parametrize(
    ("text", "call", "answer"),
    [
        (
            'Thought: multiply\nAction: calculator\nAction Input: {"expression": "6*7"}',
            {"expression": "6*7"},
            None,
        ),
        ("Thought: x\nAction: Calculator\nAction Input: {'expression': '6*7',}", {"expression": "6*7"}, None),
        ("Thought: x\nAction: `calculator`\nAction Input: 6*7\nObservation: 42", {"expression": "6*7"}, None),
        ('Action: calculator\nAction Input: ```json\n{"expression": "2"}\n```', {"expression": "2"}, None),
        ("Thought: done\nFinal Answer: 42", None, "42"),
        ("final answer:  forty-two ", None, "forty-two"),
        ("Paris.", None, "Paris."),  # the format ignored, but an answer
        (
            '<tool_call>{"name": "calculator", "arguments": {"expression": "3"}}</tool_call>',
            {"expression": "3"},
            None,
        ),
    ],
)
def test_parse_reads_actions_and_answers(text: str, call: dict[str, str] | None, answer: str | None) -> None:
    step = parse_react(text, SCHEMAS)
    assert step.failure is None
    assert step.answer == answer
    assert (step.call.arguments if step.call else None) == call


@pytest.mark.parametrize(
    ("text", "phrase"),
    [
        ("Thought: I should think more", "no 'Action:' and no 'Final Answer:'"),
        ("Thought: x\nAction: rocket_launcher\nAction Input: {}", "no tool named 'rocket_launcher'"),
        ("", "the answer was empty"),
    ],
)
def test_parse_failures_tell_the_model_the_format(text: str, phrase: str) -> None:
    step = parse_react(text, SCHEMAS)
    assert step.failure is not None and phrase in step.failure.message
    assert "Action Input: <JSON object>" in step.failure.message


def test_answer_stream_finds_a_marker_split_across_deltas() -> None:
    stream = AnswerStream()
    deltas = ["Thought: easy\nFin", "al Ans", "wer:", " 4", "2 it", " is"]
    assert "".join(stream.feed(d) for d in deltas) == "42 it is"
    held = AnswerStream()
    assert held.feed("Thought: no\nAction: calculator\nAction Input: {}") == ""


def test_stored_history_renders_as_react_text() -> None:
    history = [
        {"role": "user", "content": "6*7?"},
        {
            "role": "assistant",
            "content": "multiply",
            "tool_calls": [
                {
                    "id": "a",
                    "type": "function",
                    "function": {"name": "calculator", "arguments": '{"expression": "6*7"}'},
                }
            ],
        },
        {"role": "tool", "content": "42", "tool_call_id": "a", "name": "calculator"},
        {"role": "assistant", "content": "42"},
    ]
    assert render_messages(history) == [
        {"role": "user", "content": "6*7?"},
        {
            "role": "assistant",
            "content": 'Thought: multiply\nAction: calculator\nAction Input: {"expression": "6*7"}',
        },
        {"role": "user", "content": "Observation: 42"},
        {"role": "assistant", "content": "Final Answer: 42"},
    ]


def test_react_loop_streams_only_the_answer_and_sends_the_stop_sequence() -> None:
    model = ScriptedModel(
        [
            'Thought: I need to multiply\nAction: calculator\nAction Input: {"expression": "6*7"}',
            "Thought: the tool said 42\nFinal Answer: It is 42.",
        ]
    )
    loop = AgentLoop(model, REGISTRY, protocol="react", limits=AgentLimits(max_steps=4))
    events = list(loop.run([], "What is 6*7?"))
    assert [e.kind for e in events if e.kind != "partial_answer"] == [
        "thought",
        "tool_call",
        "tool_result",
        "thought",
        "final_answer",
    ]
    assert events[0].text == "I need to multiply"
    assert "".join(e.text for e in events if e.kind == "partial_answer") == "It is 42."
    request = model.requests[1]
    assert request.stop == REACT_STOP and not request.tools
    assert request.messages[0]["role"] == "system" and "Action Input:" in request.messages[0]["content"]
    assert request.messages[-1] == {"role": "user", "content": "Observation: 42"}
