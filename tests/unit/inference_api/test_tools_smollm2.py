"""A real pretrained model (SmolLM2-135M-Instruct) behind the OpenAI API: tool calls and JSON answers.

Its chat template knows nothing of tools, so the tools go into a Hermes system block; the grammar makes
the 135M model's calls and answers parse and fit their schemas.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest

from shipyard_services.inference.server import InferenceServers

pytestmark = pytest.mark.slow

CALCULATOR: Any = {
    "type": "function",
    "function": {
        "name": "calculator",
        "description": "Apply an arithmetic operation to two numbers",
        "parameters": {
            "type": "object",
            "properties": {
                "a": {"type": "number"},
                "b": {"type": "number"},
                "operation": {"enum": ["add", "subtract", "multiply", "divide"]},
            },
            "required": ["a", "b", "operation"],
            "additionalProperties": False,
        },
    },
}
CITY = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "country": {"type": "string"}},
    "required": ["city", "country"],
    "additionalProperties": False,
}


def client(s: InferenceServers) -> openai.OpenAI:
    return openai.OpenAI(base_url=s.http.url + "/v1", api_key="unused", max_retries=0, timeout=120)


def test_smollm2_calls_the_calculator_with_valid_arguments(smollm2_servers: InferenceServers) -> None:
    r = client(smollm2_servers).chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "What is 12 times 7? Use the calculator."}],
        tools=[CALCULATOR],
        tool_choice="required",
        parallel_tool_calls=False,
        max_tokens=80,
        temperature=0,
    )
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls", choice.message
    assert choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.function.name == "calculator"
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, CALCULATOR["function"]["parameters"])
    assert {arguments["a"], arguments["b"]} == {12, 7}  # the operands come from the question


def test_smollm2_json_schema_answer_parses(smollm2_servers: InferenceServers) -> None:
    r = client(smollm2_servers).chat.completions.create(
        model="smollm2",
        messages=[{"role": "user", "content": "Name the capital of France and its country, as JSON."}],
        response_format={"type": "json_schema", "json_schema": {"name": "capital", "schema": CITY}},
        max_tokens=40,
        temperature=0,
    )
    answer = json.loads(r.choices[0].message.content or "")
    jsonschema.validate(answer, CITY)
    assert r.choices[0].finish_reason == "stop"
