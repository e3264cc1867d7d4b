"""One running agent: its spec, its model, its live tools, and its sessions.

``AgentRuntime`` is what the agents service and the CLI call: ``chat`` continues a stored session
(history loaded within ``spec.limits.context_tokens``, each new message appended to the store as it
happens, so a cancelled or crashed turn keeps what it did), ``ask`` answers one question without a
session, ``research`` runs MindSearch-style research mode over the spec's first search tool.
"""

from __future__ import annotations

import importlib
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

from shipyard.agents.events import AgentEvent
from shipyard.agents.llm import ChatModel
from shipyard.agents.loop import AgentLoop
from shipyard.agents.retrieval.dense import Encoder
from shipyard.agents.sessions.models import Message
from shipyard.agents.sessions.store import SessionStore
from shipyard.agents.telemetry import AgentTelemetry
from shipyard.agents.toolbox import Toolbox, build_toolbox
from shipyard.errors import FailedPrecondition, FieldViolation, InvalidArgument, ResourceExhausted
from shipyard.resources.agent import AgentSpec
from shipyard.storage.base import Storage

__all__ = ["AgentRuntime", "ResearchFn", "approximate_tokens"]

ResearchFn = Callable[..., Iterator[AgentEvent]]
"""``run_research(question, *, model, search, settings, limits, cancel) -> Iterator[AgentEvent]``."""


def approximate_tokens(text: str) -> int:
    """Tokens of ``text`` without the model's tokenizer (the endpoint may be remote): ~4 characters
    a token for English prose, rounded up, which errs on the side of a shorter history."""
    return (len(text) + 3) // 4


class AgentRuntime:
    def __init__(
        self,
        name: str,
        spec: AgentSpec,
        *,
        model: ChatModel,
        store: SessionStore,
        storage: Storage,
        research_fn: ResearchFn | None = None,
        encoder: Encoder | None = None,
        telemetry: AgentTelemetry | None = None,
        count_tokens: Callable[[str], int] = approximate_tokens,
        tool_timeout_s: float | None = None,
    ) -> None:
        self.name = name
        self.spec = spec
        self.model = model
        self.store = store
        self.telemetry = telemetry or AgentTelemetry(name)
        self._research_fn = research_fn
        self._count_tokens = count_tokens
        self.toolbox: Toolbox = build_toolbox(spec, storage, encoder=encoder)
        self.loop = AgentLoop(
            model,
            self.toolbox.registry,
            system_prompt=spec.system_prompt,
            protocol=spec.protocol,
            tool_choice=spec.tool_choice,
            limits=spec.limits,
            temperature=spec.temperature,
            tool_timeout_s=tool_timeout_s,
            telemetry=self.telemetry,
        )

    def chat(
        self, session_id: str, text: str, *, cancel: threading.Event | None = None
    ) -> Iterator[AgentEvent]:
        """One turn of session ``session_id``; the new messages are stored as they happen."""
        session = self.store.get_session(session_id)
        if session.agent != self.name:
            raise InvalidArgument.field(
                "session_id", f"session {session_id!r} belongs to agent {session.agent!r}, not {self.name!r}"
            )
        if not text.strip():
            raise InvalidArgument.field("message", "must not be empty")
        try:
            history = self.store.history_for_context(
                session_id, self.spec.limits.context_tokens, self._count_tokens
            )
        except ResourceExhausted:
            # Even the newest stored turn is over the budget: the new question goes without history.
            history = []

        def persist(message: Message) -> None:
            self.store.append(session_id, message)

        yield from self.loop.run(
            [m.openai() for m in history], text, cancel=cancel, session_id=session_id, on_message=persist
        )

    def ask(self, question: str, *, cancel: threading.Event | None = None) -> Iterator[AgentEvent]:
        """One question, no session: nothing is stored, and per-session tool state is freed after."""
        session_id = f"ask-{uuid.uuid4().hex}"
        try:
            yield from self.loop.run([], question, cancel=cancel, session_id=session_id)
        finally:
            self.toolbox.end_session(session_id)

    def research(self, question: str, *, cancel: threading.Event | None = None) -> Iterator[AgentEvent]:
        """Research mode over the spec's first search tool."""
        if not self.toolbox.search_tools:
            raise FailedPrecondition(
                f"agent {self.name!r} cannot research",
                violations=[FieldViolation("spec.tools", "has no search tool; research mode needs one")],
            )
        run_research = self._research_fn or _load_research()
        yield from run_research(
            question,
            model=self.model,
            search=self.toolbox.search_tools[0],
            settings=self.spec.research,
            limits=self.spec.limits,
            cancel=cancel,
        )

    def close(self) -> None:
        self.loop.close()
        self.toolbox.close()

    def __enter__(self) -> AgentRuntime:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _load_research() -> ResearchFn:
    # Imported on first use: research mode is optional, and the agent core must not depend on it.
    try:
        module: Any = importlib.import_module("shipyard.agents.research")
    except ModuleNotFoundError as exc:
        if exc.name is None or not exc.name.startswith("shipyard.agents.research"):
            raise
        raise FailedPrecondition("research mode is not available in this build") from exc
    run = getattr(module, "run_research", None)
    if run is None:
        raise FailedPrecondition("research mode is not available in this build (no run_research)")
    return run  # type: ignore[no-any-return]
