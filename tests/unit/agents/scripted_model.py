"""A ``ChatModel`` that plays back canned outputs, for driving the agent loop without a server.

Each script entry is one model call: text (streamed in small deltas), ``Reply(text, calls)`` with
OpenAI-style tool calls, or an exception to raise when the call starts. Requests are recorded so a
test can check what the loop sent (tools, stop sequences, history).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from shipyard.agents.llm import ChatChunk, ChatRequest, RawToolCall


@dataclass(frozen=True)
class Reply:
    text: str = ""
    calls: tuple[RawToolCall, ...] = ()
    completion_tokens: int = 10


class ScriptedModel:
    def __init__(self, script: Sequence[str | Reply | Exception], *, delta_chars: int = 4) -> None:
        self.script = list(script)
        self.requests: list[ChatRequest] = []
        self.delta_chars = delta_chars

    @property
    def name(self) -> str:
        return "scripted"

    def stream(self, request: ChatRequest) -> Iterator[ChatChunk]:
        # A generator, like OpenAIChatModel.stream: errors surface at the first next().
        self.requests.append(request)
        if not self.script:
            raise AssertionError("the loop called the model more often than the script allows")
        entry = self.script.pop(0)
        if isinstance(entry, Exception):
            raise entry
        reply = entry if isinstance(entry, Reply) else Reply(entry)
        for i in range(0, len(reply.text), self.delta_chars):
            yield ChatChunk(text=reply.text[i : i + self.delta_chars])
        yield ChatChunk(
            done=True,
            tool_calls=reply.calls,
            finish_reason="tool_calls" if reply.calls else "stop",
            prompt_tokens=20,
            completion_tokens=reply.completion_tokens,
        )


def call(name: str, arguments: str, call_id: str = "call_1") -> RawToolCall:
    return RawToolCall(id=call_id, name=name, arguments=arguments)
