"""What an agent run emits, step by step: the one vocabulary of the core, the gRPC stream and the CLI.

A turn is a sequence of ``AgentEvent``: ``thought`` (ReAct reasoning or text before a tool call),
``tool_call``, ``tool_result``, ``partial_answer`` (streamed text of the answer), then exactly one
``final_answer`` (with citations and token usage) or ``error`` (a limit was hit or the model endpoint
failed). Research mode adds ``plan`` (the sub-question graph) and tags searcher events with ``node``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["AgentEvent", "Citation", "EventKind", "ToolCall", "Usage"]

EventKind = Literal["thought", "plan", "tool_call", "tool_result", "partial_answer", "final_answer", "error"]


@dataclass(frozen=True)
class ToolCall:
    """One call the model asked for; ``arguments`` is already parsed (and repaired) JSON."""

    id: str
    name: str
    arguments: dict[str, Any]

    def openai(self) -> dict[str, Any]:
        """As an entry of an assistant message's ``tool_calls``."""
        return {
            "id": self.id,
            "type": "function",
            "function": {"name": self.name, "arguments": json.dumps(self.arguments, ensure_ascii=False)},
        }


@dataclass(frozen=True)
class Citation:
    """A passage the answer cites as ``[index]``."""

    index: int
    doc_id: str
    text: str
    title: str = ""
    score: float = 0.0


@dataclass
class Usage:
    """Token counts summed over every model call of a turn."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    model_calls: int = 0

    def add(self, prompt_tokens: int, completion_tokens: int) -> None:
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        self.model_calls += 1

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class AgentEvent:
    """One step of a run. Which fields are set depends on ``kind``:

    - ``thought`` / ``partial_answer`` / ``final_answer`` / ``error``: ``text``; a ``thought`` with ``error``
      set is a tool call that could not be repaired (``error`` is the correction shown to the model); an
      ``error`` event's ``error`` is a short code (``max_steps``, ``max_tokens``, ``wall_time``,
      ``cancelled``, ``model_error``) and ``text`` names the limit;
    - ``plan``: ``data`` = ``{"nodes": [{"id", "question", "depends_on"}]}``;
    - ``tool_call``: ``tool_call``; ``tool_result``: ``tool_call`` (what ran), ``text`` (the observation),
      ``error`` (set when the tool failed), ``elapsed_s``;
    - ``final_answer``: ``citations`` and ``usage`` too.
    """

    kind: EventKind
    step: int
    text: str = ""
    tool_call: ToolCall | None = None
    error: str | None = None
    elapsed_s: float = 0.0
    citations: tuple[Citation, ...] = ()
    usage: Usage | None = None
    node: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def terminal(self) -> bool:
        return self.kind in ("final_answer", "error")
