"""The SQLite session store and context truncation."""

from __future__ import annotations

import pathlib

import pytest

from shipyard.agents.sessions import Message, SessionStore, history_for_context
from shipyard.errors import AlreadyExists, NotFound, ResourceExhausted


def test_sessions_survive_reopening_the_embedded_store(tmp_path: pathlib.Path) -> None:
    store = SessionStore.embedded(tmp_path)
    store.create_agent("helper", {"model": "smollm2", "tools": ["calculator"]})
    session = store.create_session("helper", title="math")
    store.append(session.id, Message("system", "be brief"), Message("user", "6*7?"))
    store.append(session.id, Message("assistant", "42", usage={"prompt_tokens": 12, "completion_tokens": 1}))
    store.close()
    reopened = SessionStore.embedded(tmp_path)
    assert (tmp_path / "agents" / "sessions.db").exists()
    history = reopened.messages(session.id)
    assert [(m.seq, m.role, m.content) for m in history] == [
        (0, "system", "be brief"),
        (1, "user", "6*7?"),
        (2, "assistant", "42"),
    ]
    assert history[2].usage == {"prompt_tokens": 12, "completion_tokens": 1}
    assert reopened.get_agent("helper").spec["tools"] == ["calculator"]
    assert [s.message_count for s in reopened.list_sessions("helper")] == [3]


def test_unknown_and_duplicate_resources_are_typed_errors(tmp_path: pathlib.Path) -> None:
    store = SessionStore(f"sqlite:///{tmp_path}/s.db")
    with pytest.raises(NotFound, match="agent 'ghost'"):
        store.create_session("ghost")
    with pytest.raises(NotFound, match="session 'nope'"):
        store.append("nope", Message("user", "hi"))
    store.create_agent("a", {})
    with pytest.raises(AlreadyExists):
        store.create_agent("a", {})


def test_deleting_an_agent_deletes_its_sessions(tmp_path: pathlib.Path) -> None:
    store = SessionStore(f"sqlite:///{tmp_path}/s.db")
    store.create_agent("a", {})
    sid = store.create_session("a").id
    store.append(sid, Message("user", "hi"))
    store.delete_agent("a")
    with pytest.raises(NotFound):
        store.messages(sid)


def words(text: str) -> int:
    return len(text.split())


def test_history_drops_oldest_whole_turns_and_keeps_the_system_prompt() -> None:
    call = [{"id": "c", "type": "function", "function": {"name": "calculator", "arguments": "{}"}}]
    messages = [
        Message("system", "you are terse"),
        Message("user", "one two three four five six"),
        Message("assistant", "", tool_calls=call),
        Message("tool", "result", tool_call_id="c"),
        Message("assistant", "done with the first"),
        Message("user", "second question"),
        Message("assistant", "second answer"),
    ]
    kept = history_for_context(messages, max_tokens=25, count_tokens=words, per_message=1)
    assert [m.content for m in kept] == ["you are terse", "second question", "second answer"]
    assert history_for_context(messages, max_tokens=1000, count_tokens=words) == messages
    with pytest.raises(ResourceExhausted, match="cannot hold the system prompt and the latest turn"):
        history_for_context(messages, max_tokens=5, count_tokens=words)
