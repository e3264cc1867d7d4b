"""``response_format`` (json_object / json_schema) on a real server (random tiny Llama), via ``openai``."""

from __future__ import annotations

import json
from typing import Any

import jsonschema
import openai
import pytest

from shipyard_services.inference.server import InferenceServers

WAIT = 60.0
ASK = [{"role": "user", "content": "Describe a pet as JSON"}]
PET = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "maxLength": 12},
        "legs": {"type": "integer", "minimum": 0, "maximum": 8},
        "kind": {"enum": ["cat", "dog", "fish"]},
        "vaccinated": {"type": "boolean"},
    },
    "required": ["name", "legs", "kind", "vaccinated"],
    "additionalProperties": False,
}
FORMAT: Any = {"type": "json_schema", "json_schema": {"name": "pet", "schema": PET, "strict": True}}


def client(s: InferenceServers) -> openai.OpenAI:
    return openai.OpenAI(base_url=s.http.url + "/v1", api_key="unused", max_retries=0, timeout=WAIT)


def test_json_schema_answers_parse_and_validate(servers: InferenceServers) -> None:
    c = client(servers)
    for seed in range(3):
        r = c.chat.completions.create(
            model="tiny", messages=ASK, response_format=FORMAT, max_tokens=80, seed=seed
        )
        jsonschema.validate(json.loads(r.choices[0].message.content or ""), PET)
        assert r.choices[0].finish_reason == "stop"


def test_streamed_json_schema_answer_equals_the_unary_one(servers: InferenceServers) -> None:
    c = client(servers)
    kwargs: dict[str, Any] = {"model": "tiny", "messages": ASK, "response_format": FORMAT, "max_tokens": 80}
    unary = c.chat.completions.create(temperature=0, **kwargs).choices[0].message.content
    streamed = "".join(
        ch.choices[0].delta.content or ""
        for ch in c.chat.completions.create(temperature=0, stream=True, **kwargs)
    )
    assert streamed == unary
    jsonschema.validate(json.loads(streamed), PET)


def test_completions_take_a_response_format_too(servers: InferenceServers) -> None:
    r = client(servers).completions.create(
        model="tiny",
        prompt="A pet:",
        max_tokens=80,
        temperature=0,
        extra_body={"response_format": FORMAT},
    )
    assert r.choices[0].finish_reason == "stop"  # the object closed before max_tokens
    jsonschema.validate(json.loads(r.choices[0].text), PET)  # raises ValidationError if it does not fit


def test_json_object_answer_is_an_object_and_text_is_unconstrained(servers: InferenceServers) -> None:
    c = client(servers)
    obj = c.chat.completions.create(
        model="tiny", messages=ASK, response_format={"type": "json_object"}, max_tokens=40, temperature=0
    ).choices[0]
    assert obj.message.content and obj.message.content.startswith("{")
    if obj.finish_reason == "stop":
        assert isinstance(json.loads(obj.message.content), dict)
    plain = c.chat.completions.create(model="tiny", messages=ASK, max_tokens=8, temperature=0)
    text = c.chat.completions.create(
        model="tiny", messages=ASK, response_format={"type": "text"}, max_tokens=8, temperature=0
    )
    assert text.choices[0].message.content == plain.choices[0].message.content


@pytest.mark.parametrize(
    ("response_format", "param"),
    [
        ({"type": "xml"}, "response_format.type"),
        ({"type": "json_schema"}, "response_format.json_schema"),
        (
            {"type": "json_schema", "json_schema": {"name": "pet", "schema": {"type": "nope"}}},
            "response_format.json_schema.schema",
        ),
        (
            {
                "type": "json_schema",
                "json_schema": {"name": "pet", "schema": {"type": "string", "pattern": "a(b"}},
            },
            "response_format.json_schema.schema",
        ),
    ],
)
def test_bad_response_formats_are_400s_naming_the_field(
    servers: InferenceServers, response_format: Any, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as exc:
        client(servers).chat.completions.create(
            model="tiny", messages=ASK, response_format=response_format, max_tokens=4
        )
    assert exc.value.body["param"] == param  # type: ignore[index]
    # The server is still serving.
    assert client(servers).chat.completions.create(model="tiny", messages=ASK, max_tokens=2).choices
