"""An agent end to end on a real model: SmolLM2-135M-Instruct behind our inference server on loopback.

The agent speaks OpenAI function calling to the server; the server's constrained decoding makes every
call valid JSON that fits the tool's schema, runs no tool itself, and renders the results back into
the prompt. What is asserted is what SmolLM2 does, greedily and reproducibly: with one worked example
in the system prompt (a 135M model otherwise writes the expression outside the JSON string), it calls
the calculator with the question's expression and answers from the result; it calls the sandboxed
Python tool with code that runs; and a session's second turn is sent with the first turn's history as
read back from SQLite.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest

from shipyard.agents.events import AgentEvent
from shipyard.agents.llm import ChatChunk, ChatRequest, OpenAIChatModel
from shipyard.agents.runtime import AgentRuntime
from shipyard.agents.sessions.store import SessionStore
from shipyard.agents.tools.calculator import Calculator, evaluate
from shipyard.agents.tools.python_sandbox import PythonSandbox
from shipyard.resources.agent import AgentSpec
from shipyard.storage import LocalStorage
from shipyard_services.inference.server import InferenceServers

pytestmark = pytest.mark.slow


def example_call(tool: str, arguments: dict[str, str]) -> str:
    return f"<tool_call>\n{json.dumps({'name': tool, 'arguments': arguments})}\n</tool_call>"


CALCULATOR_PROMPT = (
    "You are a helpful assistant. Use the calculator for arithmetic. Example: "
    + example_call("calculator", {"expression": "2 + 2"})
)
PYTHON_PROMPT = "You are a helpful assistant. Run Python code with the python tool. Example: " + example_call(
    "python", {"code": "print(2 + 2)"}
)


class RecordingModel:
    """The real client, keeping each request so a test can see what the agent sent."""

    def __init__(self, inner: OpenAIChatModel) -> None:
        self.inner = inner
        self.requests: list[ChatRequest] = []

    @property
    def name(self) -> str:
        return self.inner.name

    def stream(self, request: ChatRequest) -> Iterator[ChatChunk]:
        self.requests.append(request)
        return self.inner.stream(request)


def agent_spec(system_prompt: str, tool: dict[str, Any]) -> AgentSpec:
    return AgentSpec.model_validate(
        {
            "model": {"url": "http://127.0.0.1:9/v1"},  # unused: the runtime is handed its model
            "systemPrompt": system_prompt,
            "protocol": "function-calling",
            "toolChoice": "required",  # a call first, then auto: the model answers from the result
            "tools": [tool],
            "limits": {"maxSteps": 4, "maxTokensPerStep": 96, "wallTimeSeconds": 300},
        }
    )


def ask(
    servers: InferenceServers, tmp_path: pathlib.Path, spec: AgentSpec, question: str
) -> list[AgentEvent]:
    """One ``ask`` of an agent over the real server, sessions in SQLite under ``tmp_path``."""
    store = SessionStore(f"sqlite:///{tmp_path / 'sessions.db'}")
    try:
        with AgentRuntime(
            "agent", spec, model=OpenAIChatModel(servers.http.url), store=store, storage=LocalStorage()
        ) as rt:
            return list(rt.ask(question))
    finally:
        store.close()


def of_kind(events: list[AgentEvent], kind: str) -> list[AgentEvent]:
    return [e for e in events if e.kind == kind]


def trace(events: list[AgentEvent]) -> list[tuple[str, str, Any]]:
    """For failure messages: what happened, step by step."""
    return [(e.kind, e.text, e.tool_call) for e in events if e.kind != "partial_answer"]


def test_calculator_call_is_valid_runs_and_the_answer_uses_its_result(
    smollm2_servers: InferenceServers, tmp_path: pathlib.Path
) -> None:
    spec = agent_spec(CALCULATOR_PROMPT, {"type": "calculator"})
    events = ask(smollm2_servers, tmp_path, spec, "What is 17 * 23?")

    calls = of_kind(events, "tool_call")
    assert calls, trace(events)
    for event in calls:
        assert event.tool_call is not None and event.tool_call.name == "calculator"
        jsonschema.validate(event.tool_call.arguments, Calculator.spec.parameters)
        assert evaluate(event.tool_call.arguments["expression"]) == 17 * 23  # the question's arithmetic
    results = of_kind(events, "tool_result")
    assert results and all(r.error is None and r.text == "391" for r in results), trace(events)
    final = events[-1]
    assert final.kind == "final_answer", trace(events)
    assert "391" in final.text and "<tool_" not in final.text  # answered from the result, in words
    assert final.usage is not None and final.usage.model_calls == 2
    assert final.usage.prompt_tokens > 0 and final.usage.completion_tokens > 0  # the server's counts


def test_python_call_runs_in_the_sandbox_and_its_output_is_the_observation(
    smollm2_servers: InferenceServers, tmp_path: pathlib.Path
) -> None:
    spec = agent_spec(PYTHON_PROMPT, {"type": "python", "timeoutSeconds": 30})
    events = ask(smollm2_servers, tmp_path, spec, "Use Python to print the sum of the numbers from 1 to 100.")

    calls = of_kind(events, "tool_call")
    assert calls, trace(events)
    call = calls[0].tool_call
    assert call is not None and call.name == "python"
    jsonschema.validate(call.arguments, PythonSandbox.spec.parameters)
    result = of_kind(events, "tool_result")[0]
    assert result.error is None, trace(events)
    # The observation is what the model's code prints when run on its own.
    ran = subprocess.run(
        [sys.executable, "-c", call.arguments["code"]], capture_output=True, text=True, timeout=30, check=True
    )
    assert result.text.strip() == ran.stdout.strip() != ""
    assert events[-1].kind == "final_answer" and events[-1].text.strip(), trace(events)


def test_a_session_continues_over_two_turns_with_its_history_from_sqlite(
    smollm2_servers: InferenceServers, tmp_path: pathlib.Path
) -> None:
    db = tmp_path / "sessions.db"
    spec = agent_spec(CALCULATOR_PROMPT, {"type": "calculator"})
    store = SessionStore(f"sqlite:///{db}")
    store.create_agent("calc", spec.model_dump(mode="json"))
    session = store.create_session("calc")
    model = RecordingModel(OpenAIChatModel(smollm2_servers.http.url))
    with AgentRuntime("calc", spec, model=model, store=store, storage=LocalStorage()) as rt:
        first = list(rt.chat(session.id, "What is 17 * 23?"))
        assert first[-1].kind == "final_answer" and "391" in first[-1].text, trace(first)
        asked = len(model.requests)
        second = list(rt.chat(session.id, "And what is that plus 9?"))
    store.close()
    assert second[-1].kind == "final_answer", trace(second)

    # A fresh store on the same file holds both turns, in order, each answer with its turn's usage.
    reopened = SessionStore(f"sqlite:///{db}")
    stored = reopened.messages(session.id)
    reopened.close()
    users = [m.content for m in stored if m.role == "user"]
    assert users == ["What is 17 * 23?", "And what is that plus 9?"]
    answers = [m for m in stored if m.role == "assistant" and not m.tool_calls]
    assert [a.content for a in answers] == [first[-1].text, second[-1].text]
    assert answers[1].usage is not None and second[-1].usage is not None
    assert answers[1].usage["completion_tokens"] == second[-1].usage.completion_tokens
    assert any(m.role == "tool" and m.content == "391" for m in stored)
    # The second turn's first request carried the first turn as stored: question, call, result, answer.
    sent = model.requests[asked].messages
    first_turn = [m.openai() for m in stored[: stored.index(answers[0]) + 1]]
    assert list(sent[1 : 1 + len(first_turn)]) == first_turn
    assert sent[-1] == {"role": "user", "content": "And what is that plus 9?"}
