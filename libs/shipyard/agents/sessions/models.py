"""Sessions' tables (SQLAlchemy 2 declarative models) and the plain records the store hands out.

Three tables: ``agents`` (a name and its spec as JSON), ``sessions`` (a conversation with one agent)
and ``messages`` (one row per chat message, in ``seq`` order, with tool calls/results and token usage).
Rows never leave the store: callers get the frozen ``AgentRecord``/``SessionRecord``/``Message``
dataclasses, so no lazy-loading ORM object escapes its database session. The same models work on
SQLite and PostgreSQL (JSON columns are JSONB on PostgreSQL through the variant).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

__all__ = ["AgentRecord", "AgentRow", "Base", "Message", "MessageRow", "Role", "SessionRecord", "SessionRow"]

Role = Literal["system", "user", "assistant", "tool"]
_Json = JSON().with_variant(JSONB(), "postgresql")


def _now() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class AgentRow(Base):
    __tablename__ = "agents"

    name: Mapped[str] = mapped_column(String(253), primary_key=True)
    spec: Mapped[dict[str, Any]] = mapped_column(_Json)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    sessions: Mapped[list[SessionRow]] = relationship(back_populates="agent", cascade="all, delete-orphan")


class SessionRow(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_name: Mapped[str] = mapped_column(ForeignKey("agents.name", ondelete="CASCADE"), index=True)
    title: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    agent: Mapped[AgentRow] = relationship(back_populates="sessions")
    messages: Mapped[list[MessageRow]] = relationship(
        back_populates="session", cascade="all, delete-orphan", order_by="MessageRow.seq"
    )


class MessageRow(Base):
    __tablename__ = "messages"
    __table_args__ = (Index("ix_messages_session_seq", "session_id", "seq", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(ForeignKey("sessions.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(16))
    content: Mapped[str] = mapped_column(Text, default="")
    name: Mapped[str | None] = mapped_column(String(128), nullable=True)
    tool_calls: Mapped[list[dict[str, Any]] | None] = mapped_column(_Json, nullable=True)
    tool_call_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    usage: Mapped[dict[str, int] | None] = mapped_column(_Json, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=_now)
    session: Mapped[SessionRow] = relationship(back_populates="messages")


@dataclass(frozen=True)
class AgentRecord:
    name: str
    spec: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class SessionRecord:
    id: str
    agent: str
    title: str
    created_at: datetime
    updated_at: datetime
    message_count: int = 0


@dataclass(frozen=True)
class Message:
    """One chat message, shaped like OpenAI's (``tool_calls`` on assistant turns, ``tool_call_id`` on
    tool results); ``usage`` holds the token counts of the model call that produced it."""

    role: Role
    content: str = ""
    name: str | None = None
    tool_calls: list[dict[str, Any]] | None = None
    tool_call_id: str | None = None
    usage: dict[str, int] | None = None
    created_at: datetime = field(default_factory=_now)
    seq: int = -1

    def openai(self) -> dict[str, Any]:
        """This message as an entry of an OpenAI ``messages`` list."""
        out: dict[str, Any] = {"role": self.role, "content": self.content}
        if self.name:
            out["name"] = self.name
        if self.tool_calls:
            out["tool_calls"] = self.tool_calls
        if self.tool_call_id:
            out["tool_call_id"] = self.tool_call_id
        return out
