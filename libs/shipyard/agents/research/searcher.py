"""A searcher: answers one node of the plan from the passages the search tool returns for it.

It searches (``tool_call`` and ``tool_result`` events tagged with the node id), then asks the model to
answer the sub-question from the numbered passages, citing them ``[1]..[k]``; the answers of the
nodes it depends on are given as context and appended to the search query, because a sub-question
like "what is the capital of that country?" only becomes searchable with its dependency's answer.
The answer is reported as a ``thought`` tagged with the node; its markers stay local to the node
until the responder renumbers them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.agents.events import AgentEvent, ToolCall
from shipyard.agents.llm import ChatModel, ChatRequest
from shipyard.agents.research.budget import RunBudget
from shipyard.agents.research.citations import strip_markers
from shipyard.agents.research.graph import SubQuestion
from shipyard.agents.retrieval.collection import SearchHit
from shipyard.agents.tools.base import ToolContext, call_tool
from shipyard.agents.tools.search import SearchTool

__all__ = ["NO_PASSAGES", "NodeAnswer", "answer_node"]

SYSTEM = (
    "You answer a question using only the numbered passages. Cite each passage you use by its number "
    "in brackets, like [1] or [2]. If the passages do not answer the question, say so. Answer in one "
    "to three sentences."
)
NO_PASSAGES = "No passage in the collection answers this."
PASSAGE_CHARS = 1500  # one XQuAD paragraph fits; a longer passage is cut so one node cannot flood the prompt
CONTEXT_CHARS = 300  # of each dependency's answer, in the prompt and the search query


@dataclass(frozen=True)
class NodeAnswer:
    """What a searcher found: the answer (citing ``hits`` as ``[1]..[k]``) and the passages it saw."""

    node: SubQuestion
    answer: str
    hits: tuple[SearchHit, ...] = ()


def _search_k(search: SearchTool, wanted: int) -> int:
    """``wanted`` capped by the maximum the tool's schema allows (it would reject more)."""
    k_schema: Any = search.spec.parameters.get("properties", {}).get("k", {})
    maximum = k_schema.get("maximum") if isinstance(k_schema, dict) else None
    return min(wanted, maximum) if isinstance(maximum, int) else wanted


def _prompt(topic: str, node: SubQuestion, hits: Sequence[SearchHit], context: Sequence[NodeAnswer]) -> str:
    parts = []
    if topic.strip() != node.question.strip():
        parts.append(f"Main question: {topic}")
    if context:
        found = "\n".join(f"- {c.node.question} {strip_markers(c.answer)[:CONTEXT_CHARS]}" for c in context)
        parts.append(f"Earlier findings:\n{found}")
    passages = "\n\n".join(
        f"[{i}] {h.title + ': ' if h.title else ''}{h.text[:PASSAGE_CHARS]}"
        for i, h in enumerate(hits, start=1)
    )
    parts.append(f"Passages:\n{passages}")
    parts.append(f"Question: {node.question}")
    return "\n\n".join(parts)


def answer_node(
    node: SubQuestion,
    *,
    topic: str,
    context: Sequence[NodeAnswer],
    model: ChatModel,
    search: SearchTool,
    k: int,
    budget: RunBudget,
    step: int,
    emit: Callable[[AgentEvent], None],
) -> NodeAnswer:
    """Search for ``node`` and answer it; every event goes to ``emit`` tagged with ``node.id``."""
    budget.check()
    query = " ".join([node.question, *(strip_markers(c.answer)[:CONTEXT_CHARS] for c in context)])
    call = ToolCall(
        id=f"{node.id}-search", name=search.spec.name, arguments={"query": query, "k": _search_k(search, k)}
    )
    emit(AgentEvent("tool_call", step, tool_call=call, node=node.id))
    result = call_tool(search, call.arguments, ToolContext(metadata={"node": node.id}))
    emit(
        AgentEvent(
            "tool_result", step, text=result.content, tool_call=call, error=result.error,
            elapsed_s=result.elapsed, node=node.id,
        )
    )  # fmt: skip
    hits = tuple(h for h in (result.data or ()) if isinstance(h, SearchHit)) if result.ok else ()
    if not hits:
        answer = NO_PASSAGES
    else:
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": _prompt(topic, node, hits, context)},
        ]
        answer = budget.complete(model, ChatRequest(messages=messages)).text.strip() or NO_PASSAGES
    emit(AgentEvent("thought", step, text=answer, node=node.id))
    return NodeAnswer(node, answer, hits)
