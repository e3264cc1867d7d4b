"""The repair corpus: malformed tool calls small models write, and what each becomes.

Each row is one model output (message text, or an OpenAI ``tool_calls`` entry) and the expected call
(tool name and arguments) or the parse failure (a phrase of the message the model will see).
"""

from __future__ import annotations

from typing import Any

import pytest

from shipyard.agents.events import ToolCall
from shipyard.agents.parsing import (
    ParseFailure,
    extract_text_calls,
    parse_arguments,
    parse_tool_call,
    resolve_tool_name,
)

TOOLS: dict[str, dict[str, Any]] = {
    "search": {
        "type": "object",
        "properties": {"query": {"type": "string"}, "k": {"type": "integer"}},
        "required": ["query"],
    },
    "calculator": {
        "type": "object",
        "properties": {"expression": {"type": "string"}},
        "required": ["expression"],
    },
    "get_weather": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
        "required": ["city", "unit"],
    },
    "submit_form": {  # a tool whose real argument is called "parameters": never unwrapped
        "type": "object",
        "properties": {"parameters": {"type": "object"}},
        "required": ["parameters"],
    },
}

CATS = ("search", {"query": "cats"})

# (case id, model text, expected: (name, arguments) | None for "not a call" | "failure: <phrase>")
TEXT_CASES: list[tuple[str, str, Any]] = [
    ("clean hermes", '<tool_call>{"name": "search", "arguments": {"query": "cats"}}</tool_call>', CATS),
    ("single quotes", "<tool_call>{'name': 'search', 'arguments': {'query': 'cats'}}</tool_call>", CATS),
    ("trailing commas", '<tool_call>{"name": "search", "arguments": {"query": "cats",},}</tool_call>', CATS),
    (
        "missing closing braces",
        '<tool_call>{"name": "search", "arguments": {"query": "cats"</tool_call>',
        CATS,
    ),
    ("unclosed tag", '<tool_call>{"name": "search", "arguments": {"query": "cats"}}', CATS),
    ("unclosed tag and braces", '<tool_call>\n{"name": "search", "arguments": {"query": "cats"', CATS),
    ("closing tag only", '{"name": "search", "arguments": {"query": "cats"}}</tool_call>', CATS),
    ("no tags, bare json", '{"name": "search", "arguments": {"query": "cats"}}', CATS),
    ("code fence", '```json\n{"name": "search", "arguments": {"query": "cats"}}\n```', CATS),
    (
        "fence inside tags",
        '<tool_call>\n```json\n{"name": "search", "arguments": {"query": "cats"}}\n```\n</tool_call>',
        CATS,
    ),
    ("arguments as json string", '{"name": "search", "arguments": "{\\"query\\": \\"cats\\"}"}', CATS),
    ("nested under parameters", '{"name": "search", "parameters": {"query": "cats"}}', CATS),
    ("nested under args", '{"name": "search", "args": {"query": "cats"}}', CATS),
    ("double wrapped", '{"name": "search", "arguments": {"parameters": {"query": "cats"}}}', CATS),
    (
        "openai function shape",
        '{"type": "function", "function": {"name": "search", "arguments": {"query": "cats"}}}',
        CATS,
    ),
    ("flat arguments", '{"name": "search", "query": "cats"}', CATS),
    ("tool key instead of name", '{"tool": "search", "tool_input": {"query": "cats"}}', CATS),
    ("wrong case", '<tool_call>{"name": "Search", "arguments": {"query": "cats"}}</tool_call>', CATS),
    ("typo in name", '<tool_call>{"name": "serach", "arguments": {"query": "cats"}}</tool_call>', CATS),
    (
        "separator variant",
        '<tool_call>{"name": "Get-Weather", "arguments": {"city": "Oslo", "unit": "C"}}</tool_call>',
        ("get_weather", {"city": "Oslo", "unit": "C"}),
    ),
    ("unquoted keys", "<tool_call>{name: search, arguments: {query: cats}}</tool_call>", CATS),
    (
        "python literals",
        '<tool_call>{"name": "search", "arguments": {"query": "cats", "k": None}}</tool_call>',
        ("search", {"query": "cats", "k": None}),
    ),
    (
        "text before the call",
        'Let me look.\n<tool_call>{"name": "search", "arguments": {"query": "cats"}}</tool_call>',
        CATS,
    ),
    (
        "real parameters argument kept",
        '{"name": "submit_form", "arguments": {"parameters": {"a": 1}}}',
        ("submit_form", {"parameters": {"a": 1}}),
    ),
    ("no arguments at all", '<tool_call>{"name": "search"}</tool_call>', ("search", {})),
    ("plain answer", "The capital of France is Paris.", None),
    ("answer with braces inside", "Use the set {1, 2} here; name it as you like.", None),
    ("json answer without a tool name", '{"answer": 42}', None),
    ("tag around prose", "<tool_call>I want to search for cats</tool_call>", "failure: is not valid JSON"),
    ("empty tag", "<tool_call></tool_call>", "failure: is not valid JSON"),
    (
        "unknown tool",
        '<tool_call>{"name": "launch_rockets", "arguments": {}}</tool_call>',
        "failure: there is no tool named 'launch_rockets'",
    ),
    (
        "call without a name",
        '<tool_call>{"arguments": {"query": "cats"}}</tool_call>',
        'failure: has no "name"',
    ),
    (
        "list args for a 2-arg tool",
        '<tool_call>{"name": "get_weather", "arguments": ["Oslo", "C"]}</tool_call>',
        "failure: must be a JSON object",
    ),
]


@pytest.mark.parametrize(("text", "expected"), [c[1:] for c in TEXT_CASES], ids=[c[0] for c in TEXT_CASES])
def test_text_calls_are_repaired_or_explained(text: str, expected: Any) -> None:
    found = extract_text_calls(text, TOOLS)
    if expected is None:
        assert found == []
    elif isinstance(expected, str):
        assert len(found) == 1 and isinstance(found[0], ParseFailure)
        phrase = expected.removeprefix("failure: ")
        assert phrase in found[0].message
        assert found[0].message.startswith("Your tool call was not valid")
        assert "<tool_call>" in found[0].message  # it says how to answer instead
    else:
        assert len(found) == 1 and isinstance(found[0], ToolCall), found
        assert (found[0].name, found[0].arguments) == expected


RAW_CASES: list[tuple[str, str, Any, Any]] = [
    ("clean", "search", '{"query": "cats"}', CATS),
    ("single quotes", "search", "{'query': 'cats'}", CATS),
    ("truncated", "search", '{"query": "cats"', CATS),
    ("double encoded", "search", '"{\\"query\\": \\"cats\\"}"', CATS),
    ("empty string", "search", "", ("search", {})),
    ("bare value for one required arg", "calculator", "2 + 3", ("calculator", {"expression": "2 + 3"})),
    ("case and typo", "CALCULATR", '{"expression": "1"}', ("calculator", {"expression": "1"})),
    ("bare value for two args", "get_weather", "Oslo", "failure: must be a JSON object"),
    ("unknown tool", "browse", "{}", "failure: there is no tool named 'browse'"),
]


@pytest.mark.parametrize(
    ("name", "arguments", "expected"), [c[1:] for c in RAW_CASES], ids=[c[0] for c in RAW_CASES]
)
def test_function_call_entries_are_repaired(name: str, arguments: str, expected: Any) -> None:
    got = parse_tool_call(name, arguments, TOOLS, call_id="call_7")
    if isinstance(expected, str):
        assert isinstance(got, ParseFailure)
        assert expected.removeprefix("failure: ") in got.message
    else:
        assert isinstance(got, ToolCall)
        assert (got.id, got.name, got.arguments) == ("call_7", *expected)


def test_several_calls_in_one_message_are_all_found() -> None:
    text = (
        '<tool_call>{"name": "search", "arguments": {"query": "cats"}}</tool_call>\n'
        "<tool_call>{'name': 'calculator', 'arguments': {'expression': '1+1'}}"
    )
    found = extract_text_calls(text, TOOLS)
    assert [(c.name, c.arguments) for c in found if isinstance(c, ToolCall)] == [
        CATS,
        ("calculator", {"expression": "1+1"}),
    ]


def test_names_far_from_every_tool_are_not_guessed() -> None:
    assert resolve_tool_name("weather", TOOLS) == "get_weather"  # close enough to be meant
    assert resolve_tool_name("calc", TOOLS) is None
    assert resolve_tool_name("rocket", TOOLS) is None
    assert resolve_tool_name("SEARCH", TOOLS) == "search"


def test_parse_arguments_accepts_objects_and_nothing() -> None:
    assert parse_arguments({"query": "x"}, TOOLS["search"]) == {"query": "x"}
    assert parse_arguments(None, TOOLS["search"]) == {}
    assert parse_arguments("   ", TOOLS["search"]) == {}
