"""AgentRuntime: sessions stored and reloaded, one-off questions, research mode, and one real server."""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from shipyard.agents.events import AgentEvent
from shipyard.agents.llm import OpenAIChatModel
from shipyard.agents.runtime import AgentRuntime
from shipyard.agents.sessions.store import SessionStore
from shipyard.errors import FailedPrecondition, InvalidArgument
from shipyard.resources.agent import AgentSpec
from shipyard.storage import LocalStorage
from tests.unit.agents.scripted_model import Reply, ScriptedModel, call


def spec(**extra: Any) -> AgentSpec:
    return AgentSpec.model_validate(
        {
            "model": {"url": "http://127.0.0.1:9/v1"},
            "protocol": "function-calling",
            "tools": [{"type": "calculator"}],
        }
        | extra
    )


@pytest.fixture
def db_path(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "sessions.db"


def open_store(db_path: pathlib.Path) -> SessionStore:
    return SessionStore(f"sqlite:///{db_path}")


def test_session_history_is_stored_and_reloaded_from_a_new_store(db_path: pathlib.Path) -> None:
    store = open_store(db_path)
    store.create_agent("calc", spec().model_dump(mode="json"))
    session = store.create_session("calc")
    first = ScriptedModel([Reply(calls=(call("calculator", '{"expression": "6*7"}'),)), "It is 42."])
    with AgentRuntime("calc", spec(), model=first, store=store, storage=LocalStorage()) as runtime:
        events = list(runtime.chat(session.id, "What is 6*7?"))
    assert events[-1].kind == "final_answer"
    store.close()

    reopened = open_store(db_path)
    stored = reopened.messages(session.id)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "What is 6*7?"),
        ("assistant", ""),
        ("tool", "42"),
        ("assistant", "It is 42."),
    ]
    assert stored[-1].usage == {"prompt_tokens": 40, "completion_tokens": 20, "model_calls": 2}
    second = ScriptedModel(["Doubled, 84."])
    with AgentRuntime("calc", spec(), model=second, store=reopened, storage=LocalStorage()) as runtime:
        events = list(runtime.chat(session.id, "And doubled?"))
    assert events[-1].text == "Doubled, 84."
    sent = second.requests[0].messages
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "tool", "assistant", "user"]
    assert sent[2]["tool_calls"][0]["function"] == {
        "name": "calculator",
        "arguments": '{"expression": "6*7"}',
    }
    assert sent[-1]["content"] == "And doubled?"
    assert len(reopened.messages(session.id)) == 6
    reopened.close()


def test_history_is_cut_to_the_context_budget(db_path: pathlib.Path) -> None:
    store = open_store(db_path)
    store.create_agent("calc", {})
    session = store.create_session("calc")
    small = spec(limits={"context_tokens": 256})
    model = ScriptedModel(["first " * 180, "second", "third"])  # ~270 tokens: over the budget alone
    with AgentRuntime("calc", small, model=model, store=store, storage=LocalStorage()) as runtime:
        for text in ("one", "two", "three"):
            assert list(runtime.chat(session.id, text))[-1].kind == "final_answer"
    users = [[m["content"] for m in r.messages if m["role"] == "user"] for r in model.requests]
    assert users == [["one"], ["two"], ["two", "three"]]  # the long first turn no longer fits
    assert len(store.messages(session.id)) == 6  # though it stays in the session
    store.close()


def test_a_session_of_another_agent_is_refused(db_path: pathlib.Path) -> None:
    store = open_store(db_path)
    store.create_agent("other", {})
    session = store.create_session("other")
    with (
        AgentRuntime("calc", spec(), model=ScriptedModel([]), store=store, storage=LocalStorage()) as runtime,
        pytest.raises(InvalidArgument) as err,
    ):
        list(runtime.chat(session.id, "hi"))
    assert err.value.violations[0].field == "session_id"
    store.close()


def test_ask_stores_nothing(db_path: pathlib.Path) -> None:
    store = open_store(db_path)
    model = ScriptedModel(["Paris."])
    with AgentRuntime("calc", spec(), model=model, store=store, storage=LocalStorage()) as runtime:
        events = list(runtime.ask("Capital of France?"))
    assert [e.kind for e in events][-1] == "final_answer" and events[-1].text == "Paris."
    assert store.list_sessions() == []
    store.close()


def test_research_needs_a_search_tool(db_path: pathlib.Path) -> None:
    store = open_store(db_path)
    with (
        AgentRuntime("calc", spec(), model=ScriptedModel([]), store=store, storage=LocalStorage()) as runtime,
        pytest.raises(FailedPrecondition) as err,
    ):
        list(runtime.research("Why is the sky blue?"))
    assert err.value.violations[0].field == "spec.tools"
    store.close()


def test_research_runs_over_the_first_search_tool(db_path: pathlib.Path, tmp_path: pathlib.Path) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps({"id": "sky", "text": "Rayleigh scattering makes the sky blue."}) + "\n")
    seen: dict[str, Any] = {}

    def fake_research(question: str, **kwargs: Any) -> Iterator[AgentEvent]:
        seen.update(kwargs, question=question)
        hits = kwargs["search"].collection.search(question, k=1, mode="bm25")
        yield AgentEvent("final_answer", 1, text=f"See {hits[0].doc_id}.")

    agent = spec(
        tools=[{"type": "search", "name": "library", "documents": str(docs)}], research={"parallelism": 2}
    )
    store = open_store(db_path)
    with AgentRuntime(
        "sky", agent, model=ScriptedModel([]), store=store, storage=LocalStorage(), research_fn=fake_research
    ) as runtime:
        events = list(runtime.research("Why is the sky blue?"))
    assert events[-1].text == "See sky."
    assert seen["search"].spec.name == "library" and seen["settings"].parallelism == 2
    assert seen["limits"] == agent.limits
    store.close()


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, shared_data: pathlib.Path) -> pathlib.Path:
    """Overrides the inference tests' tiny model for this module: the same random 2-layer Llama and
    ChatML template, with room (1024 positions) for a ReAct system prompt that lists a tool."""
    from transformers import AutoTokenizer

    from tests.unit.engine.model_runner_support import build_tiny_llama
    from tests.unit.inference_api.tiny_model import CHATML

    directory = tmp_path_factory.mktemp("models") / "tiny-llama-1k"
    build_tiny_llama(directory, shared_data / "tokenizer" / "mistral_7b_v1", max_position_embeddings=1024)
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    tokenizer.chat_template = CHATML
    tokenizer.save_pretrained(directory)
    return directory


@pytest.mark.slow
def test_react_agent_against_a_real_inference_server(servers: Any, db_path: pathlib.Path) -> None:
    """The tiny model is random: assert the run's structure, not its words."""
    agent = spec(protocol="react", limits={"max_steps": 3, "max_tokens_per_step": 24, "max_tokens": 256})
    store = open_store(db_path)
    store.create_agent("calc", agent.model_dump(mode="json"))
    session = store.create_session("calc")
    model = OpenAIChatModel(servers.http.url, timeout_s=60)
    with AgentRuntime("calc", agent, model=model, store=store, storage=LocalStorage()) as runtime:
        events = list(runtime.chat(session.id, "What is 6 * 7?"))
    assert events and events[-1].terminal and sum(e.terminal for e in events) == 1
    last = events[-1]
    if last.kind == "error":
        assert last.error == "max_steps", last.text
    else:
        assert last.kind == "final_answer" and last.usage is not None and last.usage.completion_tokens > 0
    for event in events:
        assert 1 <= event.step <= 3
        if event.kind in ("tool_call", "tool_result"):
            assert event.tool_call is not None and event.tool_call.name == "calculator"
        if event.kind == "thought" and event.error:
            assert event.error.startswith("Your tool call was not valid")
    stored = store.messages(session.id)
    assert stored[0].role == "user" and stored[0].content == "What is 6 * 7?"
    if last.kind == "final_answer":
        assert stored[-1].role == "assistant" and stored[-1].content == last.text
    store.close()
