"""The limits of one research run, shared by the planner, the parallel searchers and the responder.

Every model call goes through ``RunBudget.stream``: it checks cancellation and the wall-clock deadline
before the call and between streamed chunks, caps the call's ``max_tokens`` by what is left of the
run's completion-token budget (reserved up front, so parallel searchers can never overshoot it
together), counts the call against ``max_steps``, and sums usage. A breach raises a typed error
(``Cancelled``, ``DeadlineExceeded``, ``ResourceExhausted``) that the run reports as an ``error`` event.
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Iterator

from shipyard.agents.events import Usage
from shipyard.agents.llm import ChatChunk, ChatModel, ChatRequest
from shipyard.errors import Cancelled, DeadlineExceeded, ResourceExhausted, Unavailable
from shipyard.resources.agent import AgentLimits

__all__ = ["RunBudget"]


class RunBudget:
    """Deadline, token and call budget of one run; thread-safe."""

    def __init__(self, limits: AgentLimits, cancel: threading.Event | None = None) -> None:
        self.limits = limits
        self.deadline = time.monotonic() + limits.wall_time_seconds
        self._cancel = cancel if cancel is not None else threading.Event()
        # Set when the run itself stops (an error elsewhere, or the consumer closed the generator), so
        # searchers still streaming give up at their next chunk.
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        self._usage = Usage()
        self._reserved = 0
        self._calls = 0

    def remaining_s(self) -> float:
        return self.deadline - time.monotonic()

    def check(self) -> None:
        """Raise if the run was cancelled, stopped or ran out of time."""
        if self._cancel.is_set():
            raise Cancelled("the research run was cancelled")
        if self.stopped.is_set():
            raise Cancelled("the research run stopped")
        if self.remaining_s() <= 0:
            raise DeadlineExceeded(
                f"the research run exceeded its wall time of {self.limits.wall_time_seconds:g} s "
                "(limits.wall_time_seconds)"
            )

    @property
    def usage(self) -> Usage:
        with self._lock:
            return dataclasses.replace(self._usage)

    def _reserve(self) -> int:
        with self._lock:
            if self._calls >= self.limits.max_steps:
                raise ResourceExhausted(
                    f"the research run needs more than {self.limits.max_steps} model calls (limits.max_steps)"
                )
            left = self.limits.max_tokens - self._usage.completion_tokens - self._reserved
            if left <= 0:
                raise ResourceExhausted(
                    f"the research run used its {self.limits.max_tokens} completion tokens "
                    "(limits.max_tokens)"
                )
            grant = min(self.limits.max_tokens_per_step, left)
            self._reserved += grant
            self._calls += 1
            return grant

    def stream(self, model: ChatModel, request: ChatRequest) -> Iterator[ChatChunk]:
        """``model.stream(request)`` under the budget: capped ``max_tokens``, checked between chunks."""
        self.check()
        grant = self._reserve()
        finished = False
        try:
            for chunk in model.stream(
                dataclasses.replace(request, max_tokens=min(request.max_tokens, grant))
            ):
                self.check()
                if chunk.done:
                    finished = True
                    with self._lock:
                        self._usage.add(chunk.prompt_tokens, chunk.completion_tokens)
                yield chunk
        finally:
            with self._lock:
                self._reserved -= grant
                if not finished:
                    # An interrupted call counts in full: its real usage is unknown.
                    self._usage.add(0, grant)

    def complete(self, model: ChatModel, request: ChatRequest) -> ChatChunk:
        """Run one budgeted call to its end: the text, finish reason and usage in one chunk."""
        parts: list[str] = []
        for chunk in self.stream(model, request):
            parts.append(chunk.text)
            if chunk.done:
                return dataclasses.replace(chunk, text="".join(parts))
        raise Unavailable(f"model {model.name!r} ended its stream without a final chunk")
