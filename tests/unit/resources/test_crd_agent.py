"""The Agent CRD: its tool union (one structural object + per-variant CEL) admits what pydantic accepts.

Runs every tool variant, with fields of other variants, out-of-range values and missing required fields,
through the API server's validation (``crd_apiserver.admit``) and through the ``Agent`` model.
"""

from __future__ import annotations

import copy
import pathlib
from typing import Any

import pytest
import yaml

from shipyard.resources.crd import crd
from tests.unit.resources.crd_apiserver import admit, openapi_schema, structural_violations
from tests.unit.resources.test_crd_examples import pydantic_errors

AGENT = crd("Agent")
EXAMPLE = yaml.safe_load(
    (pathlib.Path(__file__).resolve().parents[3] / "examples" / "agent.yaml").read_text()
)

VALID_TOOLS = [
    {"type": "calculator"},
    {"type": "calculator", "name": "calc"},
    {"type": "python", "timeoutSeconds": 30, "cpuSeconds": 10, "memoryMb": 1024},
    {"type": "search", "documents": "s3://b/docs.jsonl", "mode": "bm25", "topK": 10},
    {"type": "sql", "url": "sqlite:///db.sqlite", "maxRows": 5},
    {"type": "mcp", "servers": [{"name": "fs", "command": ["mcp-fs"]}]},
]
INVALID_TOOLS = [
    ({"type": "calculator", "cpuSeconds": 3}, "cpuSeconds"),
    ({"type": "python", "timeoutSeconds": 700}, "timeoutSeconds"),
    ({"type": "python", "timeoutSeconds": 0.05}, "timeoutSeconds"),
    ({"type": "sql"}, "url"),
    ({"type": "sql", "url": ""}, "url"),
    ({"type": "search"}, ""),
    ({"type": "search", "collection": "c", "documents": "d"}, ""),
    ({"type": "search", "collection": "c", "topK": 0}, "topK"),
    ({"type": "mcp", "servers": []}, "servers"),
    ({"type": "mcp", "servers": [{"name": "x"}], "name": "m"}, "name"),
    ({"type": "shell"}, "type"),
]


def _agent(tools: list[dict[str, Any]], model: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = copy.deepcopy(EXAMPLE)
    doc["spec"]["tools"] = tools
    if model is not None:
        doc["spec"]["model"] = model
    return doc


def test_agent_crd_is_structural() -> None:
    assert structural_violations(openapi_schema(AGENT)) == []


@pytest.mark.parametrize("tool", VALID_TOOLS, ids=[t["type"] for t in VALID_TOOLS])
def test_every_tool_variant_is_admitted_and_parses_after_defaulting(tool: dict[str, Any]) -> None:
    obj, errors = admit(AGENT, _agent([tool]))
    assert errors == []
    # No other variant's default was filled in: the stored object still parses.
    assert pydantic_errors({k: v for k, v in obj.items() if k != "status"}) == []


@pytest.mark.parametrize(("tool", "field"), INVALID_TOOLS, ids=[str(i) for i in range(len(INVALID_TOOLS))])
def test_invalid_tools_are_rejected_by_both_naming_the_field(tool: dict[str, Any], field: str) -> None:
    doc = _agent([tool])
    _, errors = admit(AGENT, doc)
    assert errors, f"{tool} was admitted"
    assert errors[0][0] in (f"spec.tools[0].{field}".rstrip("."), f"spec.tools.0.{field}".rstrip("."))
    assert pydantic_errors(doc), f"pydantic accepted {tool}"


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ({"deployment": "m", "url": "http://x/v1"}, "spec.model"),
        ({}, "spec.model"),
        ({"url": "ftp://x/v1"}, "spec.model.url"),
    ],
)
def test_model_must_be_exactly_one_http_endpoint(model: dict[str, Any], path: str) -> None:
    doc = _agent([], model)
    _, errors = admit(AGENT, doc)
    assert path in [p for p, _ in errors]
    assert pydantic_errors(doc)


def test_rejection_says_which_variant_a_field_belongs_to() -> None:
    _, errors = admit(AGENT, _agent([{"type": "calculator", "timeoutSeconds": 5}]))
    assert errors == [("spec.tools[0].timeoutSeconds", "timeoutSeconds applies only to type python, openapi")]
