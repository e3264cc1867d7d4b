"""Wire <-> domain conversion for the agents service (``shipyard.v1.AgentService``).

``AgentEvent`` <-> ``AgentStep`` both ways (the servicer sends events, the client turns steps back into
the same events, so the CLI renders a remote run exactly like an embedded one); the store's records
(``AgentRecord``, ``SessionRecord``, ``Message``) <-> ``Agent``, ``Session``, ``SessionMessage``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from google.protobuf import json_format, struct_pb2
from google.protobuf.timestamp_pb2 import Timestamp

from shipyard.agents.events import AgentEvent, Citation, EventKind, ToolCall, Usage
from shipyard.agents.sessions.models import AgentRecord, Message, SessionRecord
from shipyard.api.v1 import agents_pb2, common_pb2
from shipyard.wire.common import integral

__all__ = [
    "agent_from_pb",
    "agent_to_pb",
    "event_from_pb",
    "event_to_pb",
    "message_from_pb",
    "message_to_pb",
    "session_from_pb",
    "session_to_pb",
    "struct_from_dict",
    "struct_to_dict",
]

_KIND_TO_PB: dict[str, int] = {
    "thought": agents_pb2.STEP_KIND_THOUGHT,
    "plan": agents_pb2.STEP_KIND_PLAN,
    "tool_call": agents_pb2.STEP_KIND_TOOL_CALL,
    "tool_result": agents_pb2.STEP_KIND_TOOL_RESULT,
    "partial_answer": agents_pb2.STEP_KIND_PARTIAL_ANSWER,
    "final_answer": agents_pb2.STEP_KIND_FINAL_ANSWER,
    "error": agents_pb2.STEP_KIND_ERROR,
}
_PB_TO_KIND = {v: k for k, v in _KIND_TO_PB.items()}


def struct_from_dict(data: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(data)
    return out


def struct_to_dict(data: struct_pb2.Struct) -> dict[str, Any]:
    """A Struct as plain JSON, integers restored (Struct keeps every number as a double)."""
    result: dict[str, Any] = integral(json_format.MessageToDict(data))
    return result


def _ts(value: datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(value.astimezone(UTC))
    return ts


def _dt(value: Timestamp) -> datetime:
    return value.ToDatetime(tzinfo=UTC)


# -- events ------------------------------------------------------------------------------------------


def event_to_pb(event: AgentEvent) -> agents_pb2.AgentStep:
    step = agents_pb2.AgentStep(
        kind=_KIND_TO_PB[event.kind],  # type: ignore[arg-type]
        step=event.step,
        text=event.text,
        error=event.error or "",
        elapsed_seconds=event.elapsed_s,
        node=event.node or "",
        citations=[
            agents_pb2.Citation(index=c.index, doc_id=c.doc_id, title=c.title, text=c.text, score=c.score)
            for c in event.citations
        ],
    )
    if event.tool_call is not None:
        step.tool_call_id = event.tool_call.id
        step.tool_name = event.tool_call.name
        step.tool_arguments_json = json.dumps(event.tool_call.arguments, ensure_ascii=False)
    if event.usage is not None:
        step.usage.CopyFrom(_usage_to_pb(event.usage))
    if event.data:
        step.data_json = json.dumps(event.data, ensure_ascii=False)
    return step


def event_from_pb(step: agents_pb2.AgentStep) -> AgentEvent:
    kind: EventKind = _PB_TO_KIND.get(step.kind, "error")  # type: ignore[assignment]
    tool_call = None
    if step.tool_name:
        arguments = json.loads(step.tool_arguments_json) if step.tool_arguments_json else {}
        tool_call = ToolCall(step.tool_call_id, step.tool_name, arguments)
    return AgentEvent(
        kind=kind,
        step=step.step,
        text=step.text,
        tool_call=tool_call,
        error=step.error or None,
        elapsed_s=step.elapsed_seconds,
        citations=tuple(
            Citation(index=c.index, doc_id=c.doc_id, text=c.text, title=c.title, score=c.score)
            for c in step.citations
        ),
        usage=_usage_from_pb(step.usage) if step.HasField("usage") else None,
        node=step.node or None,
        data=json.loads(step.data_json) if step.data_json else {},
    )


def _usage_to_pb(usage: Usage) -> agents_pb2.AgentUsage:
    return agents_pb2.AgentUsage(
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        model_calls=usage.model_calls,
    )


def _usage_from_pb(usage: agents_pb2.AgentUsage) -> Usage:
    return Usage(usage.prompt_tokens, usage.completion_tokens, usage.model_calls)


# -- records -----------------------------------------------------------------------------------------


def agent_to_pb(record: AgentRecord) -> agents_pb2.Agent:
    return agents_pb2.Agent(
        metadata=common_pb2.ObjectMeta(name=record.name, create_time=_ts(record.created_at)),
        spec=struct_from_dict(record.spec),
    )


def agent_from_pb(agent: agents_pb2.Agent) -> AgentRecord:
    return AgentRecord(agent.metadata.name, struct_to_dict(agent.spec), _dt(agent.metadata.create_time))


def message_to_pb(message: Message) -> agents_pb2.SessionMessage:
    out = agents_pb2.SessionMessage(
        seq=message.seq,
        role=message.role,
        content=message.content,
        name=message.name or "",
        tool_calls_json=json.dumps(message.tool_calls, ensure_ascii=False) if message.tool_calls else "",
        tool_call_id=message.tool_call_id or "",
        create_time=_ts(message.created_at),
    )
    if message.usage:
        out.usage.CopyFrom(
            agents_pb2.AgentUsage(
                prompt_tokens=message.usage.get("prompt_tokens", 0),
                completion_tokens=message.usage.get("completion_tokens", 0),
                model_calls=message.usage.get("model_calls", 0),
            )
        )
    return out


def message_from_pb(message: agents_pb2.SessionMessage) -> Message:
    usage = None
    if message.HasField("usage"):
        usage = {
            "prompt_tokens": message.usage.prompt_tokens,
            "completion_tokens": message.usage.completion_tokens,
        }
        if message.usage.model_calls:
            usage["model_calls"] = message.usage.model_calls
    return Message(
        role=message.role,  # type: ignore[arg-type]
        content=message.content,
        name=message.name or None,
        tool_calls=json.loads(message.tool_calls_json) if message.tool_calls_json else None,
        tool_call_id=message.tool_call_id or None,
        usage=usage,
        created_at=_dt(message.create_time),
        seq=message.seq,
    )


def session_to_pb(record: SessionRecord, messages: list[Message] | None = None) -> agents_pb2.Session:
    return agents_pb2.Session(
        id=record.id,
        agent=record.agent,
        title=record.title,
        create_time=_ts(record.created_at),
        update_time=_ts(record.updated_at),
        message_count=record.message_count,
        messages=[message_to_pb(m) for m in messages or ()],
    )


def session_from_pb(session: agents_pb2.Session) -> tuple[SessionRecord, list[Message]]:
    record = SessionRecord(
        session.id,
        session.agent,
        session.title,
        _dt(session.create_time),
        _dt(session.update_time),
        session.message_count,
    )
    return record, [message_from_pb(m) for m in session.messages]
