"""The responder: writes the final answer from the searchers' answers, with citations to real passages.

Every retrieved passage gets one global number (plan order, first retrieval wins) and each node's
``[i]`` markers are rewritten into it, as MindSearch shifts each searcher's references. The model's
answer streams as ``partial_answer`` events. The ``final_answer`` keeps only the markers that name a
retrieved passage (others are removed from its text) and carries a ``Citation`` for each; when the
model cited nothing, the passages the searchers cited (or each node's best passage) are attached and
named in a last "Sources:" line, so an answer never comes without its sources.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from shipyard.agents.events import AgentEvent
from shipyard.agents.llm import ChatModel, ChatRequest
from shipyard.agents.research.budget import RunBudget
from shipyard.agents.research.citations import Sources, cited_numbers, rewrite_markers
from shipyard.agents.research.searcher import NodeAnswer

__all__ = ["number_findings", "respond"]

SYSTEM = (
    "You write the final answer to the user's question from research findings. Use only the findings. "
    "After each fact, cite its source numbers in brackets, like [1] or [2]. Be brief and direct."
)
# Of each source in the responder's prompt: enough to recognise it; the facts are in the findings.
SNIPPET_CHARS = 200


def number_findings(answers: Sequence[NodeAnswer]) -> tuple[Sources, list[tuple[str, str]], list[int]]:
    """Global sources; each finding as (sub-question, answer in global numbers); the numbers they cite."""
    sources = Sources()
    findings: list[tuple[str, str]] = []
    cited: list[int] = []
    for answer in answers:
        numbers = sources.add_all(answer.hits)

        def to_global(n: int, numbers: list[int] = numbers) -> int | None:
            return numbers[n - 1] if 1 <= n <= len(numbers) else None

        findings.append((answer.node.question, rewrite_markers(answer.answer, to_global)))
        cited += [g for n in cited_numbers(answer.answer) if (g := to_global(n)) is not None]
    return sources, findings, list(dict.fromkeys(cited))


def _prompt(question: str, sources: Sources, findings: Sequence[tuple[str, str]]) -> str:
    lines = [f"Question: {question}", "", "Findings:"]
    lines += [f"- {q} {a}" for q, a in findings]
    if sources.hits:
        lines += ["", "Sources:"]
        lines += [
            f"[{i}] {h.title + ': ' if h.title else ''}{h.text[:SNIPPET_CHARS]}"
            for i, h in enumerate(sources.hits, start=1)
        ]
    return "\n".join(lines)


def respond(
    question: str, answers: Sequence[NodeAnswer], *, model: ChatModel, budget: RunBudget, step: int
) -> Iterator[AgentEvent]:
    """Stream the final answer (``partial_answer`` events), then one ``final_answer`` with citations."""
    sources, findings, searcher_cited = number_findings(answers)
    messages = [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": _prompt(question, sources, findings)},
    ]
    parts: list[str] = []
    for chunk in budget.stream(model, ChatRequest(messages=messages)):
        if chunk.text:
            parts.append(chunk.text)
            yield AgentEvent("partial_answer", step, text=chunk.text)
    raw = "".join(parts).strip()
    text = rewrite_markers(raw, lambda n: n if n in sources else None)
    cited = [n for n in cited_numbers(raw) if n in sources]
    if not cited and sources.hits:
        cited = searcher_cited or list(dict.fromkeys(n for a in answers for n in sources.add_all(a.hits[:1])))
        suffix = ("\n\n" if text else "") + "Sources: " + " ".join(f"[{n}]" for n in cited)
        yield AgentEvent("partial_answer", step, text=suffix)
        text += suffix
    yield AgentEvent("final_answer", step, text=text, citations=sources.citations(cited), usage=budget.usage)
