"""gRPC servicer for ``shipyard.v1.AgentService``: translate, delegate to the catalog, translate back.

Runs stream: a call's cancellation (client gone, deadline) sets the run's cancel event, so the model
call and the tool in flight stop instead of running on for nobody.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import grpc
from google.protobuf import empty_pb2

from shipyard.agents.catalog import AgentCatalog
from shipyard.agents.events import AgentEvent
from shipyard.api.v1 import agents_pb2, agents_pb2_grpc
from shipyard.errors import InvalidArgument
from shipyard.wire import agents as convert


def _name(value: str, collection: str, field: str) -> str:
    name = value.removeprefix(f"{collection}/")
    if not name:
        raise InvalidArgument.field(field, "must not be empty")
    return name


class AgentServicer(agents_pb2_grpc.AgentServiceServicer):
    def __init__(self, catalog: AgentCatalog) -> None:
        self._catalog = catalog

    def CreateAgent(
        self, request: agents_pb2.CreateAgentRequest, context: grpc.ServicerContext
    ) -> agents_pb2.Agent:
        record, _ = self._catalog.put(
            convert.struct_to_dict(request.agent),
            replace=request.replace,
            validate_only=request.validate_only,
        )
        return convert.agent_to_pb(record)

    def GetAgent(
        self, request: agents_pb2.GetAgentRequest, context: grpc.ServicerContext
    ) -> agents_pb2.Agent:
        return convert.agent_to_pb(self._catalog.get(_name(request.name, "agents", "name")))

    def ListAgents(
        self, request: agents_pb2.ListAgentsRequest, context: grpc.ServicerContext
    ) -> agents_pb2.ListAgentsResponse:
        return agents_pb2.ListAgentsResponse(agents=[convert.agent_to_pb(r) for r in self._catalog.list()])

    def DeleteAgent(
        self, request: agents_pb2.DeleteAgentRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self._catalog.delete(_name(request.name, "agents", "name"))
        return empty_pb2.Empty()

    def CreateSession(
        self, request: agents_pb2.CreateSessionRequest, context: grpc.ServicerContext
    ) -> agents_pb2.Session:
        record = self._catalog.store.create_session(
            _name(request.agent, "agents", "agent"),
            title=request.title,
            session_id=request.session_id or None,
        )
        return convert.session_to_pb(record)

    def GetSession(
        self, request: agents_pb2.GetSessionRequest, context: grpc.ServicerContext
    ) -> agents_pb2.Session:
        sid = _name(request.id, "sessions", "id")
        store = self._catalog.store
        return convert.session_to_pb(store.get_session(sid), store.messages(sid))

    def ListSessions(
        self, request: agents_pb2.ListSessionsRequest, context: grpc.ServicerContext
    ) -> agents_pb2.ListSessionsResponse:
        agent = request.agent.removeprefix("agents/") or None
        sessions = self._catalog.store.list_sessions(agent)
        return agents_pb2.ListSessionsResponse(sessions=[convert.session_to_pb(s) for s in sessions])

    def DeleteSession(
        self, request: agents_pb2.DeleteSessionRequest, context: grpc.ServicerContext
    ) -> empty_pb2.Empty:
        self._catalog.store.delete_session(_name(request.id, "sessions", "id"))
        return empty_pb2.Empty()

    def Chat(
        self, request: agents_pb2.ChatRequest, context: grpc.ServicerContext
    ) -> Iterator[agents_pb2.AgentStep]:
        cancel = self._cancel_on_rpc_end(context)
        sid = _name(request.session_id, "sessions", "session_id")
        yield from self._stream(self._catalog.chat(sid, request.message, cancel=cancel), cancel)

    def Ask(
        self, request: agents_pb2.AskRequest, context: grpc.ServicerContext
    ) -> Iterator[agents_pb2.AgentStep]:
        cancel = self._cancel_on_rpc_end(context)
        agent = _name(request.agent, "agents", "agent")
        events = self._catalog.ask(agent, request.question, research=request.research, cancel=cancel)
        yield from self._stream(events, cancel)

    @staticmethod
    def _cancel_on_rpc_end(context: grpc.ServicerContext) -> threading.Event:
        cancel = threading.Event()
        # Runs when the RPC ends for any reason; after a normal end the run is already over.
        context.add_callback(cancel.set)
        return cancel

    @staticmethod
    def _stream(events: Iterator[AgentEvent], cancel: threading.Event) -> Iterator[agents_pb2.AgentStep]:
        try:
            for event in events:
                yield convert.event_to_pb(event)
        finally:
            # A cancelled call stops pulling (GeneratorExit here): stop the run and let it clean up.
            cancel.set()
            close = getattr(events, "close", None)
            if close is not None:
                close()
