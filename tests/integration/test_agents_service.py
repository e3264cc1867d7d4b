"""The agents service over its real gRPC API, with a real session store (SQLite, and PostgreSQL).

Runs go through the real ``AgentRuntime`` and tools. The model is the real inference server with the
tiny Llama where any answer will do; where a test needs the model to call a tool on cue (a random
tiny model never does), a scripted ``ChatModel`` stands in for the endpoint and nothing else.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import grpc
import pytest

from shipyard.agents.catalog import AgentCatalog, runtime_factory
from shipyard.agents.endpoints import ModelEndpoint, resolve_endpoint
from shipyard.agents.llm import ChatChunk, ChatRequest, RawToolCall
from shipyard.agents.runtime import AgentRuntime
from shipyard.agents.sessions.store import SessionStore
from shipyard.api.v1 import agents_pb2, agents_pb2_grpc
from shipyard.clients.agents import AgentsClient
from shipyard.errors import InvalidArgument, NotFound
from shipyard.resources.agent import AgentSpec
from shipyard.rpc import ServerOptions, ShipyardServer, build_server, connect, from_rpc_error
from shipyard.storage.routing import RoutingStorage
from shipyard.wire.agents import event_from_pb, struct_from_dict
from shipyard_services.agents.server import servicer_parts
from tests.integration import test_agents_postgres
from tests.polling import wait_for
from tests.unit.inference_api.servers import StartServers

pytestmark = pytest.mark.integration

postgres = test_agents_postgres.postgres  # the module's throwaway PostgreSQL server, as a fixture here


def manifest(name: str = "helper", **spec: Any) -> dict[str, Any]:
    body = {"model": {"url": "http://127.0.0.1:9/v1"}, "tools": [{"type": "calculator"}], **spec}
    return {"apiVersion": "shipyard.dev/v1alpha1", "kind": "Agent", "metadata": {"name": name}, "spec": body}


class ScriptedModel:
    """A ChatModel that calls the calculator on the first step and answers with its result after."""

    name = "scripted"

    def stream(self, request: ChatRequest) -> Iterator[ChatChunk]:
        last = request.messages[-1]
        if last["role"] != "tool":
            call = RawToolCall("call-1", "calculator", json.dumps({"expression": "12*7"}))
            yield ChatChunk(done=True, tool_calls=(call,), prompt_tokens=30, completion_tokens=9)
            return
        for piece in ("12*7 ", "= ", last["content"]):
            yield ChatChunk(text=piece)
        yield ChatChunk(done=True, finish_reason="stop", prompt_tokens=50, completion_tokens=6)


class EndlessModel:
    """A ChatModel that never stops talking; ``closed`` is set once the run stops pulling from it."""

    name = "endless"

    def __init__(self) -> None:
        self.closed = threading.Event()

    def stream(self, request: ChatRequest) -> Iterator[ChatChunk]:
        try:
            while True:
                yield ChatChunk(text="la ")
        finally:
            self.closed.set()


Serve = Callable[..., tuple[agents_pb2_grpc.AgentServiceStub, ShipyardServer]]


@pytest.fixture
def serve(tmp_path: pathlib.Path) -> Iterator[Serve]:
    """Start an agents service on a free port over the store at ``url`` (default: a SQLite file)."""
    running: list[tuple[ShipyardServer, grpc.Channel, Callable[[], None]]] = []
    default_url = f"sqlite:///{tmp_path / 'agents.db'}"

    def start(
        url: str = default_url, model: Any = None
    ) -> tuple[agents_pb2_grpc.AgentServiceStub, ShipyardServer]:
        store, storage = SessionStore(url), RoutingStorage()
        if model is None:
            factory = runtime_factory(store, storage)
        else:

            def factory(name: str, spec: AgentSpec, endpoint: ModelEndpoint) -> AgentRuntime:
                return AgentRuntime(name, spec, model=model, store=store, storage=storage)

        catalog = AgentCatalog(store, storage, resolve=lambda m: resolve_endpoint(m), runtime_factory=factory)
        parts = servicer_parts(catalog)
        server = build_server(parts.servicers, parts.service_names, ServerOptions(host="127.0.0.1", port=0))
        server.start()
        channel = connect(server.address)
        running.append((server, channel, parts.on_stop))
        return agents_pb2_grpc.AgentServiceStub(channel), server

    yield start
    for server, channel, on_stop in running:
        channel.close()
        server.stop(0)
        on_stop()


def create(stub: agents_pb2_grpc.AgentServiceStub, doc: dict[str, Any], **kw: Any) -> agents_pb2.Agent:
    return stub.CreateAgent(agents_pb2.CreateAgentRequest(agent=struct_from_dict(doc), **kw))


def chat(stub: agents_pb2_grpc.AgentServiceStub, session: str, text: str) -> list[Any]:
    return [event_from_pb(s) for s in stub.Chat(agents_pb2.ChatRequest(session_id=session, message=text))]


def error_of(call: Callable[[], Any]) -> Any:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return from_rpc_error(info.value)  # type: ignore[arg-type]


def test_agents_and_sessions_crud_with_not_found_for_what_does_not_exist(serve: Serve) -> None:
    stub, _ = serve()
    agent = create(stub, manifest(systemPrompt="Be brief."))
    assert agent.metadata.name == "helper" and agent.spec["systemPrompt"] == "Be brief."
    assert agent.spec["tools"][0]["type"] == "calculator"
    assert [a.metadata.name for a in stub.ListAgents(agents_pb2.ListAgentsRequest()).agents] == ["helper"]
    assert error_of(lambda: create(stub, manifest())).code.name == "ALREADY_EXISTS"

    session = stub.CreateSession(agents_pb2.CreateSessionRequest(agent="agents/helper", title="first"))
    updated = create(stub, manifest(systemPrompt="Be thorough."), replace=True)
    assert updated.spec["systemPrompt"] == "Be thorough."
    listed = stub.ListSessions(agents_pb2.ListSessionsRequest(agent="helper")).sessions
    assert [(s.id, s.title) for s in listed] == [(session.id, "first")]  # replacing kept the session

    stub.DeleteAgent(agents_pb2.DeleteAgentRequest(name="helper"))
    assert isinstance(error_of(lambda: stub.GetAgent(agents_pb2.GetAgentRequest(name="helper"))), NotFound)
    assert isinstance(
        error_of(lambda: stub.GetSession(agents_pb2.GetSessionRequest(id=session.id))), NotFound
    )
    missing = error_of(lambda: stub.CreateSession(agents_pb2.CreateSessionRequest(agent="nobody")))
    assert isinstance(missing, NotFound) and "nobody" in missing.message
    assert isinstance(error_of(lambda: chat(stub, "no-such-session", "hi")), NotFound)


def test_bad_manifests_are_invalid_argument_naming_the_field(serve: Serve, tmp_path: pathlib.Path) -> None:
    stub, _ = serve()
    no_model = manifest()
    del no_model["spec"]["model"]
    err = error_of(lambda: create(stub, no_model))
    assert isinstance(err, InvalidArgument) and [v.field for v in err.violations] == ["spec.model"]

    missing_docs = manifest(tools=[{"type": "search", "documents": str(tmp_path / "nope.jsonl")}])
    err = error_of(lambda: create(stub, missing_docs))
    assert isinstance(err, InvalidArgument)
    assert (
        err.violations[0].field == "spec.tools[0].documents"
        and "does not exist" in err.violations[0].description
    )

    err = error_of(lambda: create(stub, manifest(temperature=5)))
    assert err.violations[0].field == "spec.temperature"
    assert stub.ListAgents(agents_pb2.ListAgentsRequest()).agents == []  # nothing half-stored
    # The service is still serving after rejecting them.
    assert create(stub, manifest()).metadata.name == "helper"


def test_chat_streams_tool_calls_results_and_the_answer_and_stores_the_turn(serve: Serve) -> None:
    stub, _ = serve(model=ScriptedModel())
    create(stub, manifest())
    session = stub.CreateSession(agents_pb2.CreateSessionRequest(agent="helper"))

    events = chat(stub, session.id, "What is 12 times 7?")
    kinds = [e.kind for e in events]
    assert kinds[:2] == ["tool_call", "tool_result"] and kinds[-1] == "final_answer"
    call, result, final = events[0], events[1], events[-1]
    assert call.tool_call.name == "calculator" and call.tool_call.arguments == {"expression": "12*7"}
    assert result.text == "84" and result.error is None
    assert "".join(e.text for e in events if e.kind == "partial_answer") == "12*7 = 84" == final.text
    assert final.usage is not None and (final.usage.model_calls, final.usage.completion_tokens) == (2, 15)

    stored = stub.GetSession(agents_pb2.GetSessionRequest(id=f"sessions/{session.id}"))
    assert [m.role for m in stored.messages] == ["user", "assistant", "tool", "assistant"]
    assert stored.messages[0].content == "What is 12 times 7?" and stored.messages[-1].content == "12*7 = 84"
    assert json.loads(stored.messages[1].tool_calls_json)[0]["function"]["name"] == "calculator"
    assert stored.messages[-1].usage.model_calls == 2


def test_chat_against_the_real_inference_server(serve: Serve, start_servers: StartServers) -> None:
    servers = start_servers()
    stub, _ = serve()
    url = f"{servers.http.url}/v1"
    create(stub, manifest(model={"url": url, "name": "tiny"}, tools=[], limits={"maxTokensPerStep": 8}))
    session = stub.CreateSession(agents_pb2.CreateSessionRequest(agent="helper"))

    events = chat(stub, session.id, "Say hello.")
    final = events[-1]
    assert final.kind == "final_answer", final.text
    assert final.usage is not None and final.usage.model_calls == 1 and 0 < final.usage.completion_tokens <= 8
    assert final.usage.prompt_tokens > 0
    streamed = "".join(e.text for e in events if e.kind == "partial_answer")
    assert streamed.strip() == final.text
    history = stub.GetSession(agents_pb2.GetSessionRequest(id=session.id)).messages
    assert [(m.role, m.content) for m in history] == [("user", "Say hello."), ("assistant", final.text)]


def test_cancelling_the_call_stops_the_run(serve: Serve) -> None:
    model = EndlessModel()
    stub, _ = serve(model=model)
    create(stub, manifest(tools=[]))
    session = stub.CreateSession(agents_pb2.CreateSessionRequest(agent="helper"))

    call = stub.Chat(agents_pb2.ChatRequest(session_id=session.id, message="Talk forever."))
    first = next(call)
    assert first.kind == agents_pb2.STEP_KIND_PARTIAL_ANSWER
    call.cancel()
    wait_for("the model stream to be closed", model.closed.is_set)
    assert call.code() == grpc.StatusCode.CANCELLED
    history = stub.GetSession(agents_pb2.GetSessionRequest(id=session.id)).messages
    assert [m.role for m in history] == ["user"]  # no answer is stored for a cancelled turn


def test_sessions_survive_a_service_restart(serve: Serve) -> None:
    stub, server = serve(model=ScriptedModel())
    create(stub, manifest())
    session = stub.CreateSession(agents_pb2.CreateSessionRequest(agent="helper", title="math"))
    chat(stub, session.id, "What is 12 times 7?")
    before = stub.GetSession(agents_pb2.GetSessionRequest(id=session.id))
    server.stop(0)

    again, _ = serve(model=ScriptedModel())  # a new process's worth of state over the same database
    after = again.GetSession(agents_pb2.GetSessionRequest(id=session.id))
    assert after.title == "math" and after.messages == before.messages and len(after.messages) == 4
    events = chat(again, session.id, "And again?")
    assert events[-1].kind == "final_answer"
    assert again.GetSession(agents_pb2.GetSessionRequest(id=session.id)).message_count == 8


def test_the_typed_client_on_postgresql(serve: Serve, postgres: str) -> None:
    _, server = serve(url=postgres, model=ScriptedModel())
    with AgentsClient(server.address) as client:
        client.create_agent(manifest("pg-helper"))
        session = client.create_session("pg-helper", title="pg")
        events = list(client.chat(session.id, "What is 12 times 7?"))
        assert events[-1].kind == "final_answer" and events[-1].text == "12*7 = 84"
        record, messages = client.get_session(session.id)
        assert record.agent == "pg-helper" and [m.role for m in messages] == [
            "user",
            "assistant",
            "tool",
            "assistant",
        ]
        assert [s.id for s in client.list_sessions("pg-helper")] == [session.id]
        with pytest.raises(NotFound):
            client.get_agent("nobody")
        client.delete_agent("pg-helper")
        assert client.list_agents() == []


def test_the_operators_command_line_serves_the_mounted_agent(tmp_path: pathlib.Path) -> None:
    """The operator's args: ``--agent NAME --agent-spec PATH --grpc-port P`` serve the mounted manifest."""
    spec_file = tmp_path / "agent.json"
    spec_file.write_text(json.dumps(manifest("mounted")), encoding="utf-8")
    env = {**os.environ, "SHIPYARD_AGENTS_DATABASE_URL": f"sqlite:///{tmp_path / 'pod.db'}"}
    args = [
        sys.executable,
        "-m",
        "shipyard_services.agents",
        "--agent",
        "mounted",
        "--agent-spec",
        str(spec_file),
    ]
    args += ["--grpc-port", "0", "--metrics-port", "0", "--data-dir", str(tmp_path / "data")]
    log = tmp_path / "service.log"
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    try:
        ready = wait_for("READY", lambda: re.search(r"READY agents grpc=(\S+)", log.read_text()), timeout=60)
        with AgentsClient(ready.group(1)) as client:
            assert [a.name for a in client.list_agents()] == ["mounted"]
            assert client.get_agent("mounted").spec["tools"] == [{"type": "calculator", "name": "calculator"}]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log.read_text()

    wrong = subprocess.run(
        [*args[:3], "--agent", "other", *args[5:]], capture_output=True, text=True, env=env
    )
    assert wrong.returncode == 2 and "--agent" in wrong.stderr and "'mounted'" in wrong.stderr
