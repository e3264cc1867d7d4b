"""The planner: asks the model to split a question into a graph of sub-questions, and parses its reply.

MindSearch's planner writes Python that calls ``add_node``/``add_edge``; Shipyard asks for the same graph
as JSON (``{"nodes": [{"id", "question", "depends_on"}]}``) and passes a ``json_schema``
``response_format``, so a server with constrained decoding makes even a 135M model emit a valid plan.
Other servers may ignore that field (or reject it: then the call is retried without), so the reply is
parsed defensively with ``json-repair`` and repaired by ``repair_graph``; a reply with no usable node
falls back to one node, the question itself, and the reason is returned as a note for a ``thought``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import json_repair

from shipyard.agents.llm import ChatModel, ChatRequest
from shipyard.agents.research.budget import RunBudget
from shipyard.agents.research.graph import ResearchGraph, SubQuestion, repair_graph
from shipyard.errors import InvalidArgument

__all__ = ["Plan", "parse_plan", "plan_research", "plan_schema", "single_node"]

_log = logging.getLogger(__name__)

SYSTEM = (
    "You plan research for a search engine. Split the user's question into at most {max_nodes} short "
    "sub-questions, each asking for one fact the search engine can find. A sub-question that needs the "
    'answer of an earlier one lists that one\'s id in "depends_on". A simple question needs one '
    'sub-question. Reply with JSON only: {{"nodes": [{{"id": "q1", "question": "...", "depends_on": []}}]}}'
)
EXAMPLE_QUESTION = "Which river flows through the capital of the country where the Eiffel Tower stands?"
EXAMPLE_PLAN = {
    "nodes": [
        {"id": "q1", "question": "In which country is the Eiffel Tower?", "depends_on": []},
        {"id": "q2", "question": "What is the capital of that country?", "depends_on": ["q1"]},
        {"id": "q3", "question": "Which river flows through that capital?", "depends_on": ["q2"]},
    ]
}
# Keys a model may plausibly use instead of ours; accepted so that a near-miss plan is not wasted.
_LIST_KEYS = ("nodes", "sub_questions", "subquestions", "questions", "steps")
_QUESTION_KEYS = ("question", "sub_question", "content", "query", "q", "text")
_DEPS_KEYS = ("depends_on", "dependencies", "deps", "parents")


@dataclass(frozen=True)
class Plan:
    graph: ResearchGraph
    notes: list[str] = field(default_factory=list)
    fallback: bool = False


def plan_schema(max_nodes: int) -> dict[str, Any]:
    """The JSON schema of a plan with at most ``max_nodes`` nodes (for ``response_format``)."""
    node = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "pattern": "^q[0-9]{1,2}$"},
            "question": {"type": "string", "minLength": 3, "maxLength": 300},
            "depends_on": {"type": "array", "items": {"type": "string"}, "maxItems": max_nodes},
        },
        "required": ["id", "question", "depends_on"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"nodes": {"type": "array", "items": node, "minItems": 1, "maxItems": max_nodes}},
        "required": ["nodes"],
        "additionalProperties": False,
    }


def single_node(question: str) -> ResearchGraph:
    """The plan of last resort: the question itself, searched as one node."""
    return ResearchGraph([SubQuestion("q1", question)])


def _entries(value: Any) -> list[Mapping[str, Any]]:
    """Node entries from whatever JSON the model produced (object with a list, bare list, strings)."""
    if isinstance(value, Mapping):
        lists = [value[k] for k in _LIST_KEYS if isinstance(value.get(k), list)]
        value = lists[0] if lists else [value]
    if not isinstance(value, list):
        return []
    entries: list[Mapping[str, Any]] = []
    for item in value:
        if isinstance(item, str):
            entries.append({"question": item})
        elif isinstance(item, Mapping):
            question = next((item[k] for k in _QUESTION_KEYS if isinstance(item.get(k), str)), "")
            deps: Any = next((item[k] for k in _DEPS_KEYS if k in item), [])
            entries.append(
                {"id": item.get("id") or item.get("name"), "question": question, "depends_on": deps}
            )
    return entries


def parse_plan(text: str, question: str, *, max_nodes: int, truncated: bool = False) -> Plan:
    """The graph in the model's reply ``text``, or the one-node fallback with the reason why.

    ``truncated``: the reply was cut off by ``max_tokens``; json-repair closes the JSON, but its last
    sub-question may be cut mid-sentence, so it is dropped (unless it is the only one).
    """
    try:
        value = json_repair.loads(text)
    except (ValueError, RecursionError) as exc:  # json-repair gives up on some inputs rather than guess
        value, reason = None, f"unreadable JSON ({exc})"
    else:
        reason = "no JSON with sub-questions"
    entries = _entries(value)
    cut_notes = []
    if truncated and len(entries) > 1:
        entries = entries[:-1]
        cut_notes.append("the plan was cut off by the token limit; dropped its unfinished last sub-question")
    if entries:
        try:
            graph, notes = repair_graph(entries, max_nodes=max_nodes)
            return Plan(graph, cut_notes + notes)
        except InvalidArgument as exc:
            reason = str(exc)
    snippet = " ".join(text.split())[:120]
    note = f"the plan was unusable ({reason}: {snippet!r}); researching the question as one sub-question"
    return Plan(single_node(question), [note], fallback=True)


def plan_research(question: str, *, model: ChatModel, budget: RunBudget, max_nodes: int) -> Plan:
    """Ask ``model`` for the sub-question graph of ``question`` (one budgeted call, two if rejected)."""
    messages = [
        {"role": "system", "content": SYSTEM.format(max_nodes=max_nodes)},
        {"role": "user", "content": EXAMPLE_QUESTION},
        {"role": "assistant", "content": json.dumps(EXAMPLE_PLAN)},
        {"role": "user", "content": question},
    ]
    response_format = {
        "type": "json_schema",
        "json_schema": {"name": "research_plan", "schema": plan_schema(max_nodes), "strict": True},
    }
    notes: list[str] = []
    try:
        reply = budget.complete(model, ChatRequest(messages=messages, response_format=response_format))
    except InvalidArgument as exc:
        # An OpenAI-compatible server without structured outputs may refuse the field outright.
        _log.info("planner: endpoint rejected response_format (%s); retrying without it", exc)
        notes.append("the model endpoint does not take a JSON schema; planning from free text")
        reply = budget.complete(model, ChatRequest(messages=messages))
    plan = parse_plan(reply.text, question, max_nodes=max_nodes, truncated=reply.finish_reason == "length")
    return Plan(plan.graph, notes + plan.notes, plan.fallback)
