"""Tool calling through the OpenAI API on a real server (random tiny Llama), driven by the ``openai`` client.

Random weights never write a tool call on their own: calls that parse and fit their schema are the
grammar's doing. The parser and the Hermes prompt rendering are checked on their own too.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from typing import Any

import jsonschema
import openai
import pytest
from prometheus_client import CollectorRegistry

from shipyard.engine.async_engine import AsyncLLMEngine
from shipyard.engine.structured import GrammarCompiler
from shipyard_services.inference.openai.protocol import ChatCompletionRequest
from shipyard_services.inference.openai.tool_calls import ToolCallParser, render_messages, tool_calling
from shipyard_services.inference.server import InferenceServers
from tests.unit.engine.model_runner_support import build_tiny_llama
from tests.unit.inference_api.servers import serve
from tests.unit.inference_api.tiny_model import CHATML, engine_config

WAIT = 60.0
ASK = [{"role": "user", "content": "What is 2 + 3? And the weather in Paris?"}]
CALC = {
    "type": "object",
    "properties": {
        "a": {"type": "integer", "minimum": 0, "maximum": 99},
        "b": {"type": "integer", "minimum": 0, "maximum": 99},
        "op": {"enum": ["+", "-", "*", "/"]},
    },
    "required": ["a", "b", "op"],
    "additionalProperties": False,
}
WEATHER = {
    "type": "object",
    "properties": {"city": {"type": "string", "maxLength": 10}, "metric": {"type": "boolean"}},
    "required": ["city"],
    "additionalProperties": False,
}
SCHEMAS = {"calculate": CALC, "get_weather": WEATHER}
TOOLS: list[Any] = [
    {"type": "function", "function": {"name": name, "description": f"{name} tool", "parameters": schema}}
    for name, schema in SCHEMAS.items()
]


@pytest.fixture(scope="module")
def servers(
    tmp_path_factory: pytest.TempPathFactory, shared_data: pathlib.Path
) -> Iterator[InferenceServers]:
    """The tiny Llama with a 1024-token window: the tool listing alone is ~350 tokens."""
    from transformers import AutoTokenizer

    directory = tmp_path_factory.mktemp("models") / "tiny-llama-1k"
    build_tiny_llama(directory, shared_data / "tokenizer" / "mistral_7b_v1", max_position_embeddings=1024)
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(directory)
    engine = AsyncLLMEngine.from_config(str(directory), engine_config(), served_model_name="tiny")
    started = serve(engine, str(directory), CollectorRegistry())
    yield started
    started.stop()


def client(s: InferenceServers) -> openai.OpenAI:
    return openai.OpenAI(base_url=s.http.url + "/v1", api_key="unused", max_retries=0, timeout=WAIT)


def assert_valid_calls(calls: list[Any]) -> None:
    assert calls
    for call in calls:
        assert call.type == "function" and call.id.startswith("call_")
        jsonschema.validate(json.loads(call.function.arguments), SCHEMAS[call.function.name])


def test_required_tool_choice_returns_calls_that_fit_their_schemas(servers: InferenceServers) -> None:
    c = client(servers)
    for seed in range(3):
        r = c.chat.completions.create(
            model="tiny", messages=ASK, tools=TOOLS, tool_choice="required", max_tokens=120, seed=seed
        )
        choice = r.choices[0]
        assert choice.finish_reason == "tool_calls" and choice.message.content is None
        assert_valid_calls(choice.message.tool_calls)


def test_named_tool_choice_calls_exactly_that_function(servers: InferenceServers) -> None:
    r = client(servers).chat.completions.create(
        model="tiny",
        messages=ASK,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        max_tokens=120,
        temperature=0,
    )
    calls = r.choices[0].message.tool_calls
    assert [c.function.name for c in calls] == ["get_weather"] and r.choices[0].finish_reason == "tool_calls"
    assert_valid_calls(calls)


def test_auto_gives_either_plain_text_or_valid_calls(servers: InferenceServers) -> None:
    c = client(servers)
    for seed in range(4):
        r = c.chat.completions.create(model="tiny", messages=ASK, tools=TOOLS, max_tokens=60, seed=seed)
        message = r.choices[0].message
        if message.tool_calls:
            assert_valid_calls(message.tool_calls)
            assert r.choices[0].finish_reason == "tool_calls"
        else:
            assert "<tool_call>" not in (message.content or "")


def test_streamed_tool_calls_assemble_to_the_non_streamed_answer(servers: InferenceServers) -> None:
    c = client(servers)
    kwargs: dict[str, Any] = {
        "model": "tiny",
        "messages": ASK,
        "tools": TOOLS,
        "tool_choice": "required",
        "max_tokens": 120,
        "temperature": 0,
    }
    unary = c.chat.completions.create(**kwargs).choices[0]
    calls: dict[int, dict[str, str]] = {}
    content, reasons = "", []
    for chunk in c.chat.completions.create(stream=True, **kwargs):
        delta = chunk.choices[0].delta
        content += delta.content or ""
        for tc in delta.tool_calls or ():
            entry = calls.setdefault(tc.index, {"id": "", "name": "", "arguments": ""})
            entry["id"] += tc.id or ""
            entry["name"] += (tc.function.name or "") if tc.function else ""
            entry["arguments"] += (tc.function.arguments or "") if tc.function else ""
        reasons.append(chunk.choices[0].finish_reason)
    expected = [(t.function.name, t.function.arguments) for t in unary.message.tool_calls]
    assert [(calls[i]["name"], calls[i]["arguments"]) for i in sorted(calls)] == expected
    assert all(calls[i]["id"].startswith("call_") for i in calls)
    assert content == "" and [r for r in reasons if r] == ["tool_calls"] == [unary.finish_reason]


def test_a_conversation_with_earlier_calls_and_results_is_answered(servers: InferenceServers) -> None:
    history: list[Any] = [
        *ASK,
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "calculate", "arguments": '{"a": 2, "b": 3, "op": "+"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "5"},
    ]
    r = client(servers).chat.completions.create(
        model="tiny", messages=history, tools=TOOLS, tool_choice="none", max_tokens=5, temperature=0
    )
    assert r.choices[0].message.content and r.choices[0].message.tool_calls is None


@pytest.mark.parametrize(
    ("changes", "param"),
    [
        ({"tool_choice": {"type": "function", "function": {"name": "nope"}}}, "tool_choice.function.name"),
        ({"tools": None, "tool_choice": "required"}, "tool_choice"),
        ({"tool_choice": "sometimes"}, "tool_choice"),
        (
            {"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "nope"}}}]},
            "tools[0].function.parameters",
        ),
        ({"tools": [TOOLS[0], TOOLS[0]]}, "tools[1].function.name"),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"id": "x", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
                        ],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
    ],
)
def test_bad_tool_requests_are_400s_naming_the_field(
    servers: InferenceServers, changes: dict[str, Any], param: str
) -> None:
    body: dict[str, Any] = {"model": "tiny", "messages": ASK, "tools": TOOLS, "max_tokens": 4} | changes
    body = {k: v for k, v in body.items() if v is not None}
    with pytest.raises(openai.BadRequestError) as exc:
        client(servers).chat.completions.create(**body)
    assert exc.value.status_code == 400
    assert exc.value.body["param"] == param  # type: ignore[index]


def test_parser_holds_back_a_partial_opener_and_splits_text_from_calls() -> None:
    text = (
        'Let me check. <tool_call>\n{"name": "calculate", "arguments": {"a": 1}}\n</tool_call>\n'
        '<tool_call>\n{"name": "get_weather", "arguments": {}}\n</tool_call>'
    )
    parser = ToolCallParser()
    released = [parser.feed(text[i : i + 3]) for i in range(0, len(text), 3)]
    content = "".join(c for c, _ in released) + parser.finish()
    assert content == "Let me check."
    assert [c["function"] for c in parser.calls] == [
        {"name": "calculate", "arguments": '{"a": 1}'},
        {"name": "get_weather", "arguments": "{}"},
    ]
    assert all("<" not in c for c, _ in released)  # "<tool_call>" never leaks out as content
    unfinished = ToolCallParser()
    assert unfinished.feed('<tool_call>\n{"name": "calc')[0] == ""
    assert unfinished.finish() == '<tool_call>\n{"name": "calc' and not unfinished.calls


def test_hermes_prompt_lists_tools_and_renders_calls_and_results(tiny_model_dir: Any) -> None:
    from transformers import AutoTokenizer

    request = ChatCompletionRequest.model_validate(
        {
            "messages": [
                {"role": "system", "content": "Be brief."},
                *ASK,
                {
                    "role": "assistant",
                    "tool_calls": [
                        {
                            "id": "c1",
                            "type": "function",
                            "function": {"name": "calculate", "arguments": '{"a": 2}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "5"},
                {"role": "tool", "tool_call_id": "c2", "content": "sunny"},
            ],
            "tools": TOOLS,
        }
    )
    messages, tools = render_messages(request, tool_calling(request).tools, native=False)
    assert tools is None and [m["role"] for m in messages] == ["system", "user", "assistant", "user"]
    assert (
        messages[0]["content"].startswith("Be brief.") and '"name": "get_weather"' in messages[0]["content"]
    )
    assert messages[2]["content"] == '<tool_call>\n{"name": "calculate", "arguments": {"a": 2}}\n</tool_call>'
    # Results are stated in words, named by their call (c2 is unknown: no name), and ask for the answer.
    assert messages[3]["content"] == (
        "Tool result (calculate): 5\nTool result: sunny\nUse these results to answer my question."
    )
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    native, native_tools = render_messages(request, tool_calling(request).tools, native=True)
    assert native_tools and native_tools[0]["function"]["name"] == "calculate"
    assert native[2]["tool_calls"][0]["function"]["arguments"] == {"a": 2} and native[3]["role"] == "tool"
    # The auto grammar takes plain text, text then calls, and rejects a call that breaks its schema.
    grammar = tool_calling(request).structured
    assert grammar is not None
    compiler = GrammarCompiler(tokenizer, 32000)

    def accepts(text: str) -> bool:
        matcher = compiler.matcher(grammar)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
        return all(matcher.ll_matcher.consume_token(t) for t in ids) and matcher.ll_matcher.is_accepting()

    assert accepts("Hello there")
    assert accepts(
        'Sure <tool_call>\n{"name": "calculate", "arguments": {"a": 1, "b": 2, "op": "+"}}\n</tool_call>'
    )
    assert not accepts('<tool_call>\n{"name": "calculate", "arguments": {"a": 1000')
    assert not accepts('<tool_call>\n{"name": "search"')


def test_auto_grammar_never_lets_the_model_write_a_tool_response(tiny_model_dir: Any) -> None:
    """Only the caller writes tool results: text that invents one is outside the grammar."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir, local_files_only=True)
    request = ChatCompletionRequest.model_validate({"model": "tiny", "messages": ASK, "tools": TOOLS})
    structured = tool_calling(request).structured
    assert structured is not None
    grammars = GrammarCompiler(tokenizer, len(tokenizer))

    def accepted(text: str) -> bool:
        matcher = grammars.matcher(structured).ll_matcher
        ids = tokenizer.encode(text, add_special_tokens=False)
        return matcher.validate_tokens(ids) == len(ids)

    assert accepted("The answer is 5.")
    call = {"name": "calculate", "arguments": {"a": 2, "b": 3, "op": "+"}}
    assert accepted(f"<tool_call>\n{json.dumps(call)}\n</tool_call>")
    assert not accepted("<tool_response>\n5\n</tool_response>")
    assert not accepted("The answer is <tool_response>")
