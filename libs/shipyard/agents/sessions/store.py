"""The session store: agents, sessions and their messages in a real database, through SQLAlchemy.

One class for both deployments: SQLite in embedded mode (``SessionStore.embedded(data_dir)``, a file
under the data dir) and PostgreSQL on a cluster (``SessionStore("postgresql+psycopg://...")``). Tables
are created on open. Unknown agents and sessions raise ``NotFound``; a duplicate agent
``AlreadyExists``. ``history_for_context`` fits a conversation into the model's context window.
"""

from __future__ import annotations

import json
import pathlib
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from shipyard.agents.sessions.models import (
    AgentRecord,
    AgentRow,
    Base,
    Message,
    MessageRow,
    SessionRecord,
    SessionRow,
)
from shipyard.errors import AlreadyExists, InvalidArgument, NotFound, ResourceExhausted

__all__ = ["SessionStore", "history_for_context"]

_ROLES = ("system", "user", "assistant", "tool")


class SessionStore:
    """Thread-safe (one short database session per call); ``close()`` disposes the connection pool."""

    def __init__(self, url: str) -> None:
        try:
            self.engine: Engine = create_engine(url, pool_pre_ping=True)
        except (ArgumentError, ImportError) as exc:
            raise InvalidArgument.field("sessions.database_url", f"cannot use {url!r}: {exc}") from exc
        if self.engine.dialect.name == "sqlite":
            # SQLite ignores foreign keys (and so ON DELETE CASCADE) unless each connection asks.
            event.listen(self.engine, "connect", lambda conn, _: conn.execute("PRAGMA foreign_keys=ON"))
        Base.metadata.create_all(self.engine)
        self._session = sessionmaker(self.engine, expire_on_commit=False)

    @classmethod
    def embedded(cls, data_dir: str | pathlib.Path) -> SessionStore:
        path = pathlib.Path(data_dir).expanduser() / "agents" / "sessions.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        return cls(f"sqlite:///{path}")

    def close(self) -> None:
        self.engine.dispose()

    # -- agents --------------------------------------------------------------------------------------

    def create_agent(self, name: str, spec: dict[str, Any]) -> AgentRecord:
        if not name:
            raise InvalidArgument.field("agent.name", "must not be empty")
        with self._session.begin() as db:
            if db.get(AgentRow, name) is not None:
                raise AlreadyExists(f"agent {name!r} already exists")
            row = AgentRow(name=name, spec=spec)
            db.add(row)
            db.flush()
            return _agent(row)

    def update_agent(self, name: str, spec: dict[str, Any]) -> AgentRecord:
        """Replace an agent's spec in place, keeping its sessions (delete + create would cascade them)."""
        with self._session.begin() as db:
            row = self._agent_row(db, name)
            row.spec = spec
            db.flush()
            return _agent(row)

    def get_agent(self, name: str) -> AgentRecord:
        with self._session() as db:
            return _agent(self._agent_row(db, name))

    def list_agents(self) -> list[AgentRecord]:
        with self._session() as db:
            return [_agent(r) for r in db.scalars(select(AgentRow).order_by(AgentRow.name))]

    def delete_agent(self, name: str) -> None:
        """Delete an agent with all its sessions and messages."""
        with self._session.begin() as db:
            db.delete(self._agent_row(db, name))

    # -- sessions ------------------------------------------------------------------------------------

    def create_session(self, agent: str, *, title: str = "", session_id: str | None = None) -> SessionRecord:
        sid = session_id or uuid.uuid4().hex
        with self._session.begin() as db:
            self._agent_row(db, agent)
            row = SessionRow(id=sid, agent_name=agent, title=title)
            db.add(row)
            try:
                db.flush()
            except IntegrityError as exc:
                raise AlreadyExists(f"session {sid!r} already exists") from exc
            return _session_record(row, 0)

    def get_session(self, session_id: str) -> SessionRecord:
        with self._session() as db:
            row = self._session_row(db, session_id)
            return _session_record(row, self._count(db, session_id))

    def list_sessions(self, agent: str | None = None) -> list[SessionRecord]:
        with self._session() as db:
            counts = (
                select(MessageRow.session_id, func.count().label("n"))
                .group_by(MessageRow.session_id)
                .subquery()
            )
            query = (
                select(SessionRow, func.coalesce(counts.c.n, 0))
                .outerjoin(counts, counts.c.session_id == SessionRow.id)
                .order_by(SessionRow.created_at, SessionRow.id)
            )
            if agent is not None:
                self._agent_row(db, agent)
                query = query.where(SessionRow.agent_name == agent)
            return [_session_record(row, n) for row, n in db.execute(query)]

    def delete_session(self, session_id: str) -> None:
        with self._session.begin() as db:
            db.delete(self._session_row(db, session_id))

    # -- messages ------------------------------------------------------------------------------------

    def append(self, session_id: str, *messages: Message) -> list[Message]:
        """Append messages in order; returns them with ``seq`` set."""
        for i, m in enumerate(messages):
            if m.role not in _ROLES:
                raise InvalidArgument.field(f"messages[{i}].role", f"must be one of {_ROLES}, got {m.role!r}")
        with self._session.begin() as db:
            row = self._session_row(db, session_id, lock=True)
            last = db.scalar(select(func.max(MessageRow.seq)).where(MessageRow.session_id == session_id))
            seq = -1 if last is None else last
            stored = []
            for m in messages:
                seq += 1
                db.add(
                    MessageRow(
                        session_id=session_id,
                        seq=seq,
                        role=m.role,
                        content=m.content,
                        name=m.name,
                        tool_calls=m.tool_calls,
                        tool_call_id=m.tool_call_id,
                        usage=m.usage,
                        created_at=m.created_at,
                    )
                )
                stored.append(Message(**{**m.__dict__, "seq": seq}))
            row.updated_at = datetime.now(UTC)
            return stored

    def messages(self, session_id: str) -> list[Message]:
        with self._session() as db:
            self._session_row(db, session_id)
            rows = db.scalars(
                select(MessageRow).where(MessageRow.session_id == session_id).order_by(MessageRow.seq)
            )
            return [_message(r) for r in rows]

    def history_for_context(
        self, session_id: str, max_tokens: int, count_tokens: Callable[[str], int]
    ) -> list[Message]:
        """The session's messages cut to fit ``max_tokens`` (see ``history_for_context``)."""
        return history_for_context(self.messages(session_id), max_tokens, count_tokens)

    # -- internals -----------------------------------------------------------------------------------

    def _agent_row(self, db: Session, name: str) -> AgentRow:
        row = db.get(AgentRow, name)
        if row is None:
            raise NotFound(f"agent {name!r} not found")
        return row

    def _session_row(self, db: Session, session_id: str, *, lock: bool = False) -> SessionRow:
        # FOR UPDATE serialises concurrent appends to one session on PostgreSQL (SQLite locks the file).
        row = db.get(SessionRow, session_id, with_for_update=lock and self.engine.dialect.name != "sqlite")
        if row is None:
            raise NotFound(f"session {session_id!r} not found")
        return row

    def _count(self, db: Session, session_id: str) -> int:
        return int(db.scalar(select(func.count()).where(MessageRow.session_id == session_id)) or 0)


def history_for_context(
    messages: Sequence[Message], max_tokens: int, count_tokens: Callable[[str], int], *, per_message: int = 4
) -> list[Message]:
    """Leading system messages plus the newest whole turns that fit in ``max_tokens``.

    A turn starts at a user message and holds the assistant and tool messages after it; turns are
    dropped whole, oldest first, so a tool result never loses the assistant call it answers. Each
    message costs ``count_tokens`` of its content (and tool calls) plus ``per_message`` for the chat
    template. If even the system prompt and the newest turn do not fit, ``ResourceExhausted``.
    """
    if max_tokens < 1:
        raise InvalidArgument.field("max_tokens", f"must be >= 1, got {max_tokens}")

    def cost(m: Message) -> int:
        calls = count_tokens(json.dumps(m.tool_calls)) if m.tool_calls else 0
        return count_tokens(m.content) + calls + per_message

    head = 0
    while head < len(messages) and messages[head].role == "system":
        head += 1
    system, rest = list(messages[:head]), list(messages[head:])
    turns: list[list[Message]] = []
    for m in rest:
        if m.role == "user" or not turns:
            turns.append([m])
        else:
            turns[-1].append(m)
    budget = max_tokens - sum(cost(m) for m in system)
    kept: list[list[Message]] = []
    for turn in reversed(turns):
        turn_cost = sum(cost(m) for m in turn)
        if turn_cost > budget:
            break
        kept.append(turn)
        budget -= turn_cost
    if turns and not kept:
        need = sum(cost(m) for m in system) + sum(cost(m) for m in turns[-1])
        raise ResourceExhausted(
            f"the context of {max_tokens} tokens cannot hold the system prompt and the latest turn "
            f"({need} tokens)"
        )
    return system + [m for turn in reversed(kept) for m in turn]


def _agent(row: AgentRow) -> AgentRecord:
    return AgentRecord(row.name, dict(row.spec), _utc(row.created_at))


def _session_record(row: SessionRow, count: int) -> SessionRecord:
    return SessionRecord(row.id, row.agent_name, row.title, _utc(row.created_at), _utc(row.updated_at), count)


def _message(row: MessageRow) -> Message:
    return Message(
        role=row.role,  # type: ignore[arg-type]
        content=row.content,
        name=row.name,
        tool_calls=row.tool_calls,
        tool_call_id=row.tool_call_id,
        usage=row.usage,
        created_at=_utc(row.created_at),
        seq=row.seq,
    )


def _utc(value: datetime) -> datetime:
    # SQLite returns naive datetimes even for timezone-aware columns; they were written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)
