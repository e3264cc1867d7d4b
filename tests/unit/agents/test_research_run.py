"""Research runs end to end over a real BM25 collection, with a scripted model standing in for the LLM.

The scripted model implements our ``ChatModel`` protocol: it reads the prompt it is given (the passages
the real search returned, the findings the run assembled) and answers like a well-behaved model would,
citing the numbers under which the run showed it the passages, so the citations checked here come from
real retrieval and the run's own renumbering.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator

import pytest

from shipyard.agents.events import AgentEvent
from shipyard.agents.llm import ChatChunk, ChatRequest
from shipyard.agents.research import run_research
from shipyard.agents.research.searcher import NO_PASSAGES
from shipyard.agents.retrieval import Collection
from shipyard.agents.tools.search import SearchTool
from shipyard.data.document import Document
from shipyard.errors import InvalidArgument, Unavailable
from shipyard.resources.agent import AgentLimits, Research

QUESTION = "Which river flows through the capital of the country where the Eiffel Tower stands?"
DOCS = [
    Document(
        "eiffel", "The Eiffel Tower is a wrought-iron lattice tower in France, built for the 1889 fair."
    ),
    Document("paris", "Paris is the capital and largest city of France."),
    Document("seine", "The Seine is a river that flows through Paris into the English Channel."),
    Document("nile", "The Nile is the longest river in Africa and flows into the Mediterranean."),
    Document("everest", "Mount Everest is the highest mountain above sea level, in the Himalayas."),
]
PLAN = {
    "nodes": [
        {"id": "q1", "question": "In which country is the Eiffel Tower?", "depends_on": []},
        {"id": "q2", "question": "What is the capital city of France?", "depends_on": []},
        {"id": "q3", "question": "Which river flows through that capital?", "depends_on": ["q2"]},
    ]
}
# A searcher's answer by a keyword of its sub-question: (keyword, answer template, cited passage).
SEARCH_FACTS = [("Eiffel", "It stands in France [{}].", "Eiffel"), ("capital city", "Paris [{}].", "capital")]
SEARCH_FACTS += [("river", "The Seine flows through Paris [{}].", "Seine")]


def numbered(text: str) -> dict[str, int]:
    """The number the prompt shows each passage under, keyed by the passage's text."""
    return {m.group(2): int(m.group(1)) for m in re.finditer(r"^\[(\d+)\] (.*)$", text, re.M)}


def number_of(text: str, needle: str) -> int:
    return next(n for passage, n in numbered(text).items() if needle in passage)


class ScriptedModel:
    """Our ChatModel protocol with canned behaviour per role (planner / searcher / responder)."""

    def __init__(self, plan: str = json.dumps(PLAN), responder: str | None = None) -> None:
        self.plan = plan
        self.responder = responder
        self.requests: list[ChatRequest] = []
        self.replies: list[list[str]] = []  # the words of each reply, as streamed
        self.lock = threading.Lock()
        self.on_searcher: Callable[[str], None] = lambda question: None
        self.reject_response_format = False

    @property
    def name(self) -> str:
        return "scripted"

    def reply(self, request: ChatRequest) -> str:
        system, user = request.messages[0]["content"], request.messages[-1]["content"]
        if system.startswith("You plan research"):
            if request.response_format is not None and self.reject_response_format:
                raise InvalidArgument("model endpoint rejected the request: response_format is not supported")
            return self.plan
        if system.startswith("You answer a question"):
            question = user.rsplit("Question: ", 1)[1]
            self.on_searcher(question)
            for keyword, answer, needle in SEARCH_FACTS:
                if keyword in question:
                    return answer.format(number_of(user, needle))
            return "Paris is the capital of France [1]."
        if self.responder is not None:
            return self.responder
        shown = numbered(user)  # cite what was shown; 99 (never shown) when the search missed a passage
        cite = {key: next((n for p, n in shown.items() if key in p), 99) for key in ("Seine", "capital")}
        return f"The Seine [{cite['Seine']}] flows through Paris [{cite['capital']}] [99]."

    def stream(self, request: ChatRequest) -> Iterator[ChatChunk]:
        with self.lock:
            self.requests.append(request)
        reply = self.reply(request).split(" ")
        words = reply[: request.max_tokens]
        with self.lock:
            self.replies.append(words)  # one token per word: max_tokens cuts like a real server
        for i, word in enumerate(words):
            yield ChatChunk(text=word if i == 0 else " " + word)
        prompt_chars = sum(len(m["content"]) for m in request.messages)
        yield ChatChunk(
            done=True,
            finish_reason="length" if len(words) < len(reply) else "stop",
            prompt_tokens=prompt_chars // 4,
            completion_tokens=len(words),
        )

    def calls(self, role_prefix: str) -> list[ChatRequest]:
        return [r for r in self.requests if r.messages[0]["content"].startswith(role_prefix)]


@pytest.fixture(scope="module")
def search() -> SearchTool:
    return SearchTool(Collection.build("facts", DOCS, encoder=None), mode="bm25")


def research(model: ScriptedModel, search: SearchTool, **overrides: object) -> list[AgentEvent]:
    limits = AgentLimits(**{k: v for k, v in overrides.items() if k in AgentLimits.model_fields})
    settings = Research(**{k: v for k, v in overrides.items() if k in Research.model_fields})
    cancel = overrides.get("cancel")
    assert cancel is None or isinstance(cancel, threading.Event)
    return list(
        run_research(QUESTION, model=model, search=search, settings=settings, limits=limits, cancel=cancel)
    )


def test_research_plans_searches_nodes_in_parallel_and_cites_retrieved_passages(search: SearchTool) -> None:
    model = ScriptedModel()
    both_first_wave_searchers = threading.Barrier(2, timeout=10)  # breaks unless q1 and q2 run at once
    model.on_searcher = lambda q: None if "that capital" in q else both_first_wave_searchers.wait()
    events = research(model, search, passages_per_question=2)

    assert [e.kind for e in events[:1]] == ["plan"]
    assert [n["id"] for n in events[0].data["nodes"]] == ["q1", "q2", "q3"]
    node_events = [(e.node, e.kind) for e in events if e.node is not None]
    # Plan order whatever the threads' timing: each node's search, result and answer, q3 after its wave.
    assert node_events == [
        (q, k) for q in ("q1", "q2", "q3") for k in ("tool_call", "tool_result", "thought")
    ]
    q3_call = next(e for e in events if e.node == "q3" and e.kind == "tool_call")
    assert q3_call.tool_call is not None and "Paris" in q3_call.tool_call.arguments["query"]
    assert q3_call.tool_call.arguments["k"] == 2
    q3_prompt = model.calls("You answer")[-1].messages[-1]["content"]
    assert "Earlier findings:\n- What is the capital city of France? Paris." in q3_prompt

    final = events[-1]
    assert final.kind == "final_answer" and [e.kind for e in events].count("final_answer") == 1
    assert "".join(e.text for e in events if e.kind == "partial_answer").endswith("[99].")
    assert "[99]" not in final.text  # not a retrieved passage: dropped from the answer
    assert {c.doc_id for c in final.citations} == {"seine", "paris"}
    by_index = {c.index: c for c in final.citations}
    assert set(int(n) for n in re.findall(r"\[(\d+)\]", final.text)) == set(by_index)
    assert "Seine" in by_index[int(re.search(r"Seine \[(\d+)\]", final.text).group(1))].text  # type: ignore[union-attr]
    assert final.usage is not None and final.usage.model_calls == 5 == len(model.requests)
    assert final.usage.completion_tokens == sum(len(words) for words in model.replies)
    planner = model.calls("You plan")[0]
    assert planner.response_format is not None and planner.response_format["type"] == "json_schema"


def test_an_unusable_plan_falls_back_to_one_node_and_still_answers_with_sources(search: SearchTool) -> None:
    events = research(ScriptedModel(plan="Sure, let me think about rivers."), search)
    thought = events[0]
    assert thought.kind == "thought" and "unusable" in thought.text
    assert events[1].kind == "plan" and events[1].data["nodes"] == [
        {"id": "q1", "question": QUESTION, "depends_on": []}
    ]
    final = events[-1]
    assert final.kind == "final_answer" and final.citations
    assert all(c.doc_id in {d.id for d in DOCS} for c in final.citations)


def test_an_answer_without_citations_gets_the_searchers_sources_attached(search: SearchTool) -> None:
    events = research(ScriptedModel(responder="The Seine."), search)
    final = events[-1]
    assert final.kind == "final_answer"
    assert final.text.startswith("The Seine.\n\nSources: [")
    assert {c.doc_id for c in final.citations} == {"eiffel", "paris", "seine"}  # what the searchers cited
    assert "".join(e.text for e in events if e.kind == "partial_answer") == final.text


def test_a_server_refusing_response_format_is_asked_again_without_it(search: SearchTool) -> None:
    model = ScriptedModel()
    model.reject_response_format = True
    events = research(model, search)
    assert any(e.kind == "thought" and "JSON schema" in e.text for e in events)
    assert events[-1].kind == "final_answer"
    assert [r.response_format is None for r in model.calls("You plan")] == [False, True]


def test_cancel_stops_the_run_with_an_error_and_no_answer(search: SearchTool) -> None:
    cancel = threading.Event()
    model = ScriptedModel()
    model.on_searcher = lambda q: cancel.set()  # the user cancels while the searchers are answering
    events = research(model, search, cancel=cancel)
    assert events[-1].kind == "error" and "cancelled" in events[-1].text
    assert not any(e.kind in ("final_answer", "partial_answer") for e in events)
    assert model.calls("You write") == []


def test_cancel_before_the_searchers_start_makes_no_more_model_calls(search: SearchTool) -> None:
    cancel = threading.Event()
    model = ScriptedModel()
    events: list[AgentEvent] = []
    for event in run_research(
        QUESTION, model=model, search=search, settings=Research(), limits=AgentLimits(), cancel=cancel
    ):
        events.append(event)
        if event.kind == "plan":
            cancel.set()
    assert [e.kind for e in events] == ["plan", "error"]
    assert len(model.requests) == 1


def test_the_token_budget_ends_the_run_with_an_error_naming_the_limit(search: SearchTool) -> None:
    events = research(ScriptedModel(), search, max_tokens=32, max_tokens_per_step=30)
    assert events[-1].kind == "error" and "limits.max_tokens" in events[-1].text
    assert events[-1].usage is not None and events[-1].usage.completion_tokens <= 32


def test_few_model_calls_allowed_skips_planning(search: SearchTool) -> None:
    model = ScriptedModel()
    events = research(model, search, max_steps=2)
    assert "limits.max_steps=2" in events[0].text
    assert events[1].data["nodes"] == [{"id": "q1", "question": QUESTION, "depends_on": []}]
    assert model.calls("You plan") == [] and events[-1].kind == "final_answer"


def test_closing_the_stream_early_stops_the_run(search: SearchTool) -> None:
    model = ScriptedModel()
    stream = run_research(QUESTION, model=model, search=search, settings=Research(), limits=AgentLimits())
    assert next(stream).kind == "plan"
    stream.close()
    assert len(model.requests) == 1


def test_an_empty_question_is_an_invalid_argument(search: SearchTool) -> None:
    with pytest.raises(InvalidArgument) as info:
        run_research("  ", model=ScriptedModel(), search=search, settings=Research(), limits=AgentLimits())
    assert info.value.violations[0].field == "question"


def test_a_sub_question_nothing_matches_is_answered_without_a_model_call(search: SearchTool) -> None:
    plan = {"nodes": [{"id": "q1", "question": "zzzz qqqq?", "depends_on": []}]}
    model = ScriptedModel(plan=json.dumps(plan))
    events = research(model, search)
    result = next(e for e in events if e.kind == "tool_result")
    assert result.node == "q1" and "No passage matches" in result.text
    assert next(e for e in events if e.kind == "thought" and e.node == "q1").text == NO_PASSAGES
    assert model.calls("You answer") == [] and events[-1].kind == "final_answer"
    assert events[-1].citations == ()


def test_a_failing_model_endpoint_ends_the_run_with_an_error_event(search: SearchTool) -> None:
    model = ScriptedModel()

    def endpoint_down(question: str) -> None:
        raise Unavailable("model endpoint unreachable: connection refused")

    model.on_searcher = endpoint_down
    events = research(model, search)
    assert events[-1].kind == "error" and "unreachable" in events[-1].text
    assert events[-1].error == "UNAVAILABLE"
    assert [e.kind for e in events].count("error") == 1
