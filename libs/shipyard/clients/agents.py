"""A typed client of the agents service: domain records and ``AgentEvent``s in, gRPC underneath.

Used by ``shipyard agent ... --endpoint HOST:PORT``; it returns the same types as the embedded catalog,
so the CLI renders a remote run exactly like a local one. gRPC errors come back as the typed
``ShipyardError`` the service raised (field violations included).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import grpc

from shipyard.agents.events import AgentEvent
from shipyard.agents.sessions.models import AgentRecord, Message, SessionRecord
from shipyard.api.v1 import agents_pb2, agents_pb2_grpc
from shipyard.rpc import ClientOptions, connect, from_rpc_error
from shipyard.wire import agents as convert

__all__ = ["AgentsClient"]


class AgentsClient:
    """``AgentService`` at ``target`` (``host:port``). Close it, or use it as a context manager."""

    def __init__(self, target: str, options: ClientOptions | None = None) -> None:
        self._channel = connect(target, options or ClientOptions())
        self._stub = agents_pb2_grpc.AgentServiceStub(self._channel)

    def __enter__(self) -> AgentsClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    # -- agents --------------------------------------------------------------------------------------

    def create_agent(
        self, manifest: Mapping[str, Any], *, replace: bool = False, validate_only: bool = False
    ) -> AgentRecord:
        request = agents_pb2.CreateAgentRequest(
            agent=convert.struct_from_dict(dict(manifest)), replace=replace, validate_only=validate_only
        )
        return convert.agent_from_pb(self._call(self._stub.CreateAgent, request))

    def get_agent(self, name: str) -> AgentRecord:
        return convert.agent_from_pb(self._call(self._stub.GetAgent, agents_pb2.GetAgentRequest(name=name)))

    def list_agents(self) -> list[AgentRecord]:
        response = self._call(self._stub.ListAgents, agents_pb2.ListAgentsRequest())
        return [convert.agent_from_pb(a) for a in response.agents]

    def delete_agent(self, name: str) -> None:
        self._call(self._stub.DeleteAgent, agents_pb2.DeleteAgentRequest(name=name))

    # -- sessions ------------------------------------------------------------------------------------

    def create_session(self, agent: str, *, title: str = "", session_id: str | None = None) -> SessionRecord:
        request = agents_pb2.CreateSessionRequest(agent=agent, title=title, session_id=session_id or "")
        record, _ = convert.session_from_pb(self._call(self._stub.CreateSession, request))
        return record

    def get_session(self, session_id: str) -> tuple[SessionRecord, list[Message]]:
        """The session and its whole history, oldest message first."""
        return convert.session_from_pb(
            self._call(self._stub.GetSession, agents_pb2.GetSessionRequest(id=session_id))
        )

    def list_sessions(self, agent: str | None = None) -> list[SessionRecord]:
        response = self._call(self._stub.ListSessions, agents_pb2.ListSessionsRequest(agent=agent or ""))
        return [convert.session_from_pb(s)[0] for s in response.sessions]

    def delete_session(self, session_id: str) -> None:
        self._call(self._stub.DeleteSession, agents_pb2.DeleteSessionRequest(id=session_id))

    # -- runs ----------------------------------------------------------------------------------------

    def chat(self, session_id: str, message: str, *, timeout: float | None = None) -> Iterator[AgentEvent]:
        """One turn's events as they happen. Closing the iterator early cancels the run on the server."""
        request = agents_pb2.ChatRequest(session_id=session_id, message=message)
        return self._stream(self._stub.Chat(request, timeout=timeout))

    def ask(
        self, agent: str, question: str, *, research: bool = False, timeout: float | None = None
    ) -> Iterator[AgentEvent]:
        request = agents_pb2.AskRequest(agent=agent, question=question, research=research)
        return self._stream(self._stub.Ask(request, timeout=timeout))

    @staticmethod
    def _stream(call: Any) -> Iterator[AgentEvent]:
        try:
            for step in call:
                yield convert.event_from_pb(step)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
        finally:
            call.cancel()  # a no-op after the stream ended; stops the run when the caller stopped early

    @staticmethod
    def _call(method: Any, request: Any) -> Any:
        try:
            return method(request)
        except grpc.RpcError as exc:
            raise from_rpc_error(exc) from None
