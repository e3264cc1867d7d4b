"""Agent sessions with memory, persisted in SQLite (embedded) or PostgreSQL through one SQLAlchemy layer."""

from shipyard.agents.sessions.models import AgentRecord, Message, Role, SessionRecord
from shipyard.agents.sessions.store import SessionStore, history_for_context

__all__ = ["AgentRecord", "Message", "Role", "SessionRecord", "SessionStore", "history_for_context"]
