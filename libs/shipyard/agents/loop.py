"""One turn of an agent: call the model, run the tools it asks for, until an answer or a limit.

``AgentLoop.run(history, user_message)`` yields ``AgentEvent``s (see ``events``) and hands every message
worth keeping to ``on_message`` as it happens (the user message, assistant tool calls, tool results,
the final answer with the turn's usage), in OpenAI's shape whatever the protocol.

Protocols: ``function-calling`` sends OpenAI ``tools`` (``tool_choice="auto"``) and reads
``tool_calls``, or Hermes ``<tool_call>`` text when the server left the calls in the content;
``react`` speaks the ``react`` text protocol; ``auto`` is function calling until the server rejects a
request carrying ``tools`` (``InvalidArgument`` before any output), then ReAct from then on.

Answer text streams as ``partial_answer`` events; in function calling, text of a step that then calls
a tool was a preamble, and a ``thought`` event with the same text follows. A model output whose call
cannot be repaired is a ``thought`` event with ``error`` set; the model sees the correction as an
observation and tries again, within ``max_steps``. Tool failures (bad arguments, a raise, a timeout)
are ``tool_result`` events with ``error`` and observations too: the turn goes on. The turn ends with
one ``final_answer`` or one ``error`` naming the limit that stopped it (``limits.max_steps``,
``limits.max_tokens``, ``limits.wall_time_seconds``, cancelled) or the model endpoint's failure.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.trace import Span

from shipyard.agents import react
from shipyard.agents.events import AgentEvent, Citation, ToolCall, Usage
from shipyard.agents.llm import ChatChunk, ChatModel, ChatRequest
from shipyard.agents.parsing import (
    FC_HINT,
    ParseFailure,
    answer_text_end,
    extract_text_calls,
    parse_tool_call,
    text_before_calls,
)
from shipyard.agents.sessions.models import Message
from shipyard.agents.telemetry import AgentTelemetry
from shipyard.agents.tools.base import ToolContext, ToolResult
from shipyard.agents.tools.registry import ToolRegistry
from shipyard.errors import InvalidArgument, ShipyardError
from shipyard.resources.agent import AgentLimits, Protocol, ToolChoice

__all__ = ["AgentLoop", "OnMessage"]

_log = logging.getLogger(__name__)
OnMessage = Callable[[Message], None]


class _LimitHit(Exception):
    def __init__(self, outcome: str, text: str) -> None:
        super().__init__(text)
        self.outcome = outcome
        self.text = text


@dataclass
class _Turn:
    messages: list[dict[str, Any]]
    on_message: OnMessage
    cancel: threading.Event
    ctx: ToolContext
    started: float
    usage: Usage = field(default_factory=Usage)
    step: int = 0
    tool_calls: int = 0
    hits: list[Any] = field(default_factory=list)

    def keep(self, message: Message) -> None:
        self.messages.append(message.openai())
        self.on_message(message)


@dataclass
class _Output:
    text: str = ""
    streamed: str = ""
    final: ChatChunk | None = None


class AgentLoop:
    """Runs turns for one agent; reusable across turns and sessions, ``close()`` when done."""

    def __init__(
        self,
        model: ChatModel,
        tools: ToolRegistry,
        *,
        system_prompt: str = "You are a helpful assistant.",
        protocol: Protocol = "auto",
        tool_choice: ToolChoice = "auto",
        limits: AgentLimits | None = None,
        temperature: float = 0.0,
        tool_timeout_s: float | None = None,
        telemetry: AgentTelemetry | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.tools = tools
        self.system_prompt = system_prompt
        self.protocol = protocol
        self.tool_choice = tool_choice
        self.limits = limits or AgentLimits()
        self.temperature = temperature
        self.tool_timeout_s = tool_timeout_s
        self.telemetry = telemetry or AgentTelemetry()
        self._clock = clock
        self._fc_rejected = False
        self._schemas = {t["function"]["name"]: t["function"]["parameters"] for t in tools.openai_tools()}
        self._pool = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="agent-tool")

    @property
    def active_protocol(self) -> str:
        """``function-calling`` or ``react``: what the next model call uses."""
        if self.protocol == "react" or (self.protocol == "auto" and self._fc_rejected):
            return "react"
        return "function-calling"

    def close(self) -> None:
        # A tool still running past its timeout cannot be interrupted; its thread ends on its own.
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(
        self,
        history: Sequence[Mapping[str, Any]],
        user_message: str,
        *,
        cancel: threading.Event | None = None,
        session_id: str = "default",
        on_message: OnMessage | None = None,
    ) -> Iterator[AgentEvent]:
        if not user_message.strip():
            raise InvalidArgument.field("message", "must not be empty")
        turn = _Turn(
            messages=[dict(m) for m in history],
            on_message=on_message or (lambda _m: None),
            cancel=cancel or threading.Event(),
            ctx=ToolContext(session_id=session_id),
            started=self._clock(),
        )
        turn.keep(Message(role="user", content=user_message))
        outcome = "answer"
        try:
            while True:
                answer = yield from self._step(turn)
                if answer is not None:
                    citations = _citations(answer, turn.hits)
                    usage = {
                        "prompt_tokens": turn.usage.prompt_tokens,
                        "completion_tokens": turn.usage.completion_tokens,
                        "model_calls": turn.usage.model_calls,
                    }
                    turn.keep(Message(role="assistant", content=answer, usage=usage))
                    yield AgentEvent(
                        "final_answer", turn.step, text=answer, citations=citations, usage=turn.usage
                    )
                    return
        except _LimitHit as hit:
            outcome = hit.outcome
            yield AgentEvent("error", turn.step, text=hit.text, error=hit.outcome, usage=turn.usage)
        finally:
            self.telemetry.turn_finished(outcome, turn.step, self._clock() - turn.started)

    # -- one step ------------------------------------------------------------------------------------

    def _check(self, turn: _Turn, *, before_call: bool = False) -> None:
        if turn.cancel.is_set():
            raise _LimitHit("cancelled", "the turn was cancelled")
        elapsed = self._clock() - turn.started
        if elapsed >= self.limits.wall_time_seconds:
            raise _LimitHit(
                "wall_time",
                f"wall time limit: no final answer after {elapsed:.1f} s (limits.wall_time_seconds = "
                f"{self.limits.wall_time_seconds:g})",
            )
        if before_call and turn.step >= self.limits.max_steps:
            raise _LimitHit(
                "max_steps",
                f"step limit: no final answer after {turn.step} model calls (limits.max_steps = "
                f"{self.limits.max_steps})",
            )
        if before_call and turn.usage.completion_tokens >= self.limits.max_tokens:
            raise _LimitHit(
                "max_tokens",
                f"token limit: {turn.usage.completion_tokens} completion tokens used without a final answer "
                f"(limits.max_tokens = {self.limits.max_tokens})",
            )

    def _step(self, turn: _Turn) -> Iterator[AgentEvent]:
        """One model call and the tools it asks for; returns the answer if the model gave one."""
        self._check(turn, before_call=True)
        turn.step += 1
        protocol = self.active_protocol
        with self.telemetry.step_span(turn.step, protocol) as span:
            try:
                out = yield from self._call_model(turn, protocol)
            except _FallBack:
                turn.step -= 1
                return None
            assert out.final is not None
            tokens = out.final.completion_tokens or _estimate_tokens(out.text, out.final)
            turn.usage.add(out.final.prompt_tokens, tokens)
            span.set_attribute("agent.completion_tokens", tokens)
            if protocol == "react":
                answer, calls, thought = _read_react(out.text, self._schemas)
            else:
                answer, calls, thought = self._read_function_calls(out)
            if answer is not None:
                if thought:
                    yield AgentEvent("thought", turn.step, text=thought)
                if not out.streamed and answer:
                    yield AgentEvent("partial_answer", turn.step, text=answer)
                return answer
            yield from self._act(turn, out.text, thought, calls, protocol, span)
        return None

    def _call_model(self, turn: _Turn, protocol: str) -> Iterator[AgentEvent]:
        remaining_tokens = self.limits.max_tokens - turn.usage.completion_tokens
        system = self.system_prompt
        tools = self.tools.openai_tools()
        max_tokens = min(self.limits.max_tokens_per_step, remaining_tokens)
        if protocol == "react":
            system = react.react_system_prompt(self.system_prompt, tools)
            messages = [{"role": "system", "content": system}, *react.render_messages(turn.messages)]
            request = ChatRequest(
                messages, max_tokens=max_tokens, temperature=self.temperature, stop=react.REACT_STOP
            )
        else:
            request = ChatRequest(
                [{"role": "system", "content": system}, *turn.messages],
                tools=tools,
                tool_choice=self._tool_choice(turn) if tools else None,
                max_tokens=max_tokens,
                temperature=self.temperature,
            )
        out = _Output()
        answer_stream = react.AnswerStream() if protocol == "react" else None
        stream: Iterator[ChatChunk] | None = None
        try:
            while True:
                try:
                    if stream is None:
                        stream = iter(self.model.stream(request))
                    chunk = next(stream)
                except StopIteration:
                    break
                except InvalidArgument:
                    if self.protocol == "auto" and tools and protocol != "react" and not out.text:
                        _log.info("model %s rejected tools; falling back to ReAct", self.model.name)
                        self._fc_rejected = True
                        raise _FallBack() from None
                    raise
                out.text += chunk.text
                if chunk.done:
                    out.final = chunk
                    break
                delta = answer_stream.feed(chunk.text) if answer_stream else _fc_answer_delta(out)
                if delta:
                    out.streamed += delta
                    yield AgentEvent("partial_answer", turn.step, text=delta)
                self._check(turn)
        except ShipyardError as exc:
            raise _LimitHit("model_error", f"the model endpoint failed: {exc}") from exc
        finally:
            close = getattr(stream, "close", None) if stream is not None else None
            if close is not None:
                close()  # ends the HTTP stream when the turn stops early
        if out.final is None:
            raise _LimitHit(
                "model_error", f"model {self.model.name!r} ended its stream without a final chunk"
            )
        return out

    def _read_function_calls(self, out: _Output) -> tuple[str | None, list[ToolCall | ParseFailure], str]:
        assert out.final is not None
        if out.final.tool_calls:
            calls = [
                parse_tool_call(c.name, c.arguments, self._schemas, call_id=c.id)
                for c in out.final.tool_calls
            ]
            # The server returns whole calls as tool_calls; a <tool_call> still in the text is one that
            # max_tokens cut off (small models repeat calls until then): not a thought, and not history.
            cut_off = "<tool_call>" in out.text.lower()
            thought = text_before_calls(out.text) if cut_off else out.text.strip()
            return None, calls, thought
        found = extract_text_calls(out.text, self._schemas, hint=FC_HINT)
        if found:
            return None, found, text_before_calls(out.text)
        return out.text.strip(), [], ""

    def _tool_choice(self, turn: _Turn) -> str:
        """``required`` holds only until the turn's first tool call (then ``auto``), so a model that must
        use a tool still gets to answer, as the OpenAI Agents SDK's ``reset_tool_choice`` does."""
        if self.tool_choice == "required" and turn.tool_calls:
            return "auto"
        return self.tool_choice

    def _act(
        self,
        turn: _Turn,
        raw: str,
        thought: str,
        calls: list[ToolCall | ParseFailure],
        protocol: str,
        step_span: Span,
    ) -> Iterator[AgentEvent]:
        good = [c for c in calls if isinstance(c, ToolCall)]
        bad = [c for c in calls if isinstance(c, ParseFailure)]
        correction = "\n".join(f.message for f in bad)
        if bad:
            self.telemetry.parse_failed()
            yield AgentEvent("thought", turn.step, text=raw.strip(), error=correction)
        if thought and good:
            yield AgentEvent("thought", turn.step, text=thought)
        if not good:
            # Shown to the model for this turn only: the stored history keeps well-formed calls.
            turn.messages.append({"role": "assistant", "content": raw})
            turn.messages.append({"role": "user", "content": _observation(correction, protocol)})
            return
        turn.keep(Message(role="assistant", content=thought, tool_calls=[c.openai() for c in good]))
        turn.tool_calls += len(good)
        for call in good:
            yield AgentEvent("tool_call", turn.step, tool_call=call)
            with self.telemetry.tool_span(call, step_span) as span:
                result = self._run_tool(turn, call)
                self.telemetry.tool_finished(span, call, result.error, result.elapsed)
            if isinstance(result.data, list):
                turn.hits += [h for h in result.data if hasattr(h, "doc_id") and hasattr(h, "text")]
            yield AgentEvent(
                "tool_result",
                turn.step,
                text=result.content,
                tool_call=call,
                error=result.error,
                elapsed_s=result.elapsed,
            )
            turn.keep(Message(role="tool", content=result.content, name=call.name, tool_call_id=call.id))
        if bad:
            turn.messages.append({"role": "user", "content": _observation(correction, protocol)})

    def _run_tool(self, turn: _Turn, call: ToolCall) -> ToolResult:
        remaining = max(0.0, self.limits.wall_time_seconds - (self._clock() - turn.started))
        timeout = remaining if self.tool_timeout_s is None else min(self.tool_timeout_s, remaining)
        started = time.monotonic()
        future = self._pool.submit(self.tools.call, call.name, call.arguments, turn.ctx)
        try:
            return future.result(timeout=timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            failure = ToolResult.failure(f"the tool {call.name!r} did not finish within {timeout:.1f} s")
            return ToolResult(failure.content, error=failure.error, elapsed=time.monotonic() - started)


class _FallBack(Exception):
    """The server rejected ``tools``: redo the step with ReAct."""


def _read_react(
    text: str, schemas: Mapping[str, Any]
) -> tuple[str | None, list[ToolCall | ParseFailure], str]:
    step = react.parse_react(text, schemas)
    if step.answer is not None:
        return step.answer, [], step.thought
    call: ToolCall | ParseFailure = step.call if step.call is not None else step.failure  # type: ignore[assignment]
    return None, [call], step.thought


def _observation(text: str, protocol: str) -> str:
    return react.observation(text) if protocol == "react" else text


def _fc_answer_delta(out: _Output) -> str:
    lead = len(out.text) - len(out.text.lstrip())  # leading whitespace is never shown
    return out.text[lead + len(out.streamed) : max(answer_text_end(out.text), lead + len(out.streamed))]


def _estimate_tokens(text: str, final: ChatChunk) -> int:
    """Servers that report no usage still count against ``max_tokens``: about 4 characters a token."""
    chars = len(text) + sum(len(c.name) + len(c.arguments) for c in final.tool_calls)
    return max(1, chars // 4) if chars else 0


def _citations(answer: str, hits: Sequence[Any]) -> tuple[Citation, ...]:
    """The search passages whose document id the answer names, numbered in order of first mention."""
    seen: dict[str, Any] = {}
    for hit in hits:
        if hit.doc_id not in seen and hit.doc_id in answer:
            seen[hit.doc_id] = hit
    ordered = sorted(seen.values(), key=lambda h: answer.index(h.doc_id))
    return tuple(
        Citation(
            index=i,
            doc_id=h.doc_id,
            text=h.text,
            title=getattr(h, "title", ""),
            score=getattr(h, "score", 0.0),
        )
        for i, h in enumerate(ordered, start=1)
    )
