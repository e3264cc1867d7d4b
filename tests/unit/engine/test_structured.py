"""Constrained decoding in the engine, on a random tiny Llama: the grammar holds whatever the weights say.

Random weights would never emit JSON on their own, so valid output here is the constraint's doing.
Unconstrained requests batched with constrained ones must come out token-identical to a run without
them, and preemption (recompute) must not confuse a sequence's grammar state.
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any

import jsonschema
import pytest

from shipyard.config import InferenceConfig
from shipyard.engine import LLMEngine, RequestOutput, SamplingParams
from shipyard.engine.model_runner import PagedModelRunner, load_runner
from shipyard.engine.structured import StructuredOutput
from shipyard.errors import InvalidArgument
from shipyard.models.local import LocalModel

SCHEMA = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 8},
        "sunny": {"type": "boolean"},
        "temp": {"type": "integer", "minimum": -40, "maximum": 50},
        "unit": {"enum": ["C", "F"]},
    },
    "required": ["city", "sunny", "temp", "unit"],
    "additionalProperties": False,
}
JSON = StructuredOutput.json_schema(SCHEMA, field="response_format.json_schema.schema")


@pytest.fixture(scope="module")
def loaded(tiny_model_dir: pathlib.Path) -> tuple[PagedModelRunner, Any]:
    config = InferenceConfig(kv_cache_memory=8e6, block_size=4)
    return load_runner(LocalModel(tiny_model_dir, "tiny"), config)


def make_engine(loaded: tuple[PagedModelRunner, Any], **config: Any) -> LLMEngine:
    runner, tokenizer = loaded
    settings = {"max_num_batched_tokens": 32, "max_num_seqs": 8, **config}
    return LLMEngine(runner, tokenizer, InferenceConfig(**settings))


def run(
    eng: LLMEngine, requests: dict[str, tuple[list[int], SamplingParams]]
) -> dict[str, list[RequestOutput]]:
    for rid, (prompt, params) in requests.items():
        eng.add_request(rid, prompt, params)
    outs: dict[str, list[RequestOutput]] = {}
    for _ in range(2000):
        if not eng.has_unfinished():
            return outs
        for out in eng.step():
            outs.setdefault(out.request_id, []).append(out)
    raise AssertionError("engine did not finish")


def text(outs: list[RequestOutput]) -> str:
    return "".join(o.text for o in outs)


def prompt(tokenizer: Any, i: int) -> list[int]:
    return tokenizer(f"Weather report number {i}: tell me about the sky", add_special_tokens=False)[
        "input_ids"
    ]


def test_json_schema_output_from_random_weights_parses_and_fits_the_schema(
    loaded: tuple[PagedModelRunner, Any],
) -> None:
    eng = make_engine(loaded)
    tokenizer = loaded[1]
    requests = {
        f"r{i}": (
            prompt(tokenizer, i),
            SamplingParams(max_tokens=80, temperature=1.0, seed=i, structured=JSON),
        )
        for i in range(4)
    }
    requests["greedy"] = (prompt(tokenizer, 9), SamplingParams(max_tokens=80, temperature=0, structured=JSON))
    outs = run(eng, requests)
    for rid, seq_outs in outs.items():
        document = json.loads(text(seq_outs))
        jsonschema.validate(document, SCHEMA)
        assert seq_outs[-1].finish_reason == "stop", rid
    assert len({text(o) for o in outs.values()}) > 1  # sampling still varies within the grammar


def test_unconstrained_requests_are_token_identical_with_or_without_constrained_neighbours(
    loaded: tuple[PagedModelRunner, Any],
) -> None:
    tokenizer = loaded[1]
    free = {
        "greedy": (prompt(tokenizer, 1), SamplingParams(max_tokens=12, temperature=0, ignore_eos=True)),
        "seeded": (prompt(tokenizer, 2), SamplingParams(max_tokens=12, seed=7, ignore_eos=True, top_k=50)),
    }
    alone = run(make_engine(loaded), dict(free))
    constrained = {
        f"c{i}": (prompt(tokenizer, 3 + i), SamplingParams(max_tokens=40, seed=i, structured=JSON))
        for i in range(3)
    }
    mixed = run(make_engine(loaded), free | constrained)
    for rid in free:
        assert [t for o in mixed[rid] for t in o.token_ids] == [t for o in alone[rid] for t in o.token_ids]
    for rid in constrained:
        assert text(mixed[rid]).startswith("{")


def test_preempted_constrained_sequences_resume_their_grammar(
    loaded: tuple[PagedModelRunner, Any], tiny_model_dir: pathlib.Path
) -> None:
    tokenizer = loaded[1]
    requests = {
        f"r{i}": (prompt(tokenizer, i), SamplingParams(max_tokens=60, temperature=0, structured=JSON))
        for i in range(6)
    }
    roomy = run(make_engine(loaded), dict(requests))
    # A KV cache of ~24 blocks cannot hold six sequences at once: preemption is forced.
    small = load_runner(
        LocalModel(tiny_model_dir, "tiny"), InferenceConfig(kv_cache_memory=5e4, block_size=4)
    )
    eng = make_engine(small)
    tight = run(eng, dict(requests))
    assert eng.stats().num_preemptions > 0
    for rid in requests:
        assert text(tight[rid]) == text(roomy[rid])
        jsonschema.validate(json.loads(text(tight[rid])), SCHEMA)


def test_regex_and_lark_constraints_shape_the_output(loaded: tuple[PagedModelRunner, Any]) -> None:
    tokenizer = loaded[1]
    regex = StructuredOutput("regex", r"[A-Z]{3}-[0-9]{2,4}")
    lark = StructuredOutput("lark", 'start: "yes" | "no" | "maybe"')
    outs = run(
        make_engine(loaded),
        {
            "regex": (prompt(tokenizer, 0), SamplingParams(max_tokens=20, seed=1, structured=regex)),
            "lark": (prompt(tokenizer, 1), SamplingParams(max_tokens=20, seed=2, structured=lark)),
            "object": (
                prompt(tokenizer, 2),
                SamplingParams(max_tokens=60, temperature=0, structured=StructuredOutput("json_object")),
            ),
        },
    )
    assert re.fullmatch(r"[A-Z]{3}-[0-9]{2,4}", text(outs["regex"]))
    assert text(outs["lark"]) in {"yes", "no", "maybe"} and outs["lark"][-1].finish_reason == "stop"
    obj = text(outs["object"])
    assert obj.startswith("{") and (
        outs["object"][-1].finish_reason == "length" or isinstance(json.loads(obj), dict)
    )


@pytest.mark.parametrize(
    ("structured", "reason"),
    [
        (StructuredOutput.json_schema({"type": "nope"}, field="response_format.json_schema.schema"), "nope"),
        (StructuredOutput("json_schema", "{not json", field="response_format.json_schema.schema"), "json"),
        (StructuredOutput("lark", "start: (", field="grammar"), "compile"),
        (StructuredOutput("regex", "a(b", field="regex"), "unclosed"),
    ],
)
def test_a_grammar_that_does_not_compile_is_rejected_at_submit_naming_the_field(
    loaded: tuple[PagedModelRunner, Any], structured: StructuredOutput, reason: str
) -> None:
    eng = make_engine(loaded)
    with pytest.raises(InvalidArgument) as exc:
        eng.add_request("bad", [1, 2, 3], SamplingParams(structured=structured))
    assert exc.value.violations[0].field == structured.field
    assert reason in exc.value.violations[0].description.lower()
    assert not eng.has_unfinished()
