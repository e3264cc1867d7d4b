"""The model an agent talks to: any OpenAI-compatible chat endpoint (Shipyard's inference service first).

``ChatModel`` is the one protocol the agent loop and research mode call: ``stream(request)`` yields
``ChatChunk`` text deltas and ends with one chunk carrying ``done=True``, the assembled ``tool_calls``
(raw: name + argument string, parsed/repaired by the agent), ``finish_reason`` and ``usage``.
``complete`` is the non-streaming convenience. ``OpenAIChatModel`` implements it with the official
``openai`` client, so tests and users can point it at any server that speaks the API.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from shipyard.errors import FailedPrecondition, InvalidArgument, NotFound, ResourceExhausted, Unavailable

__all__ = ["ChatChunk", "ChatModel", "ChatRequest", "OpenAIChatModel", "RawToolCall"]


@dataclass(frozen=True)
class RawToolCall:
    """A tool call as the server returned it: ``arguments`` is a JSON string, possibly malformed."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class ChatRequest:
    messages: Sequence[dict[str, Any]]
    tools: Sequence[dict[str, Any]] = ()
    tool_choice: str | dict[str, Any] | None = None
    response_format: dict[str, Any] | None = None
    max_tokens: int = 512
    temperature: float = 0.0
    stop: Sequence[str] = ()
    seed: int | None = None


@dataclass(frozen=True)
class ChatChunk:
    text: str = ""
    done: bool = False
    tool_calls: tuple[RawToolCall, ...] = ()
    finish_reason: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class ChatModel(Protocol):
    @property
    def name(self) -> str: ...

    def stream(self, request: ChatRequest) -> Iterator[ChatChunk]: ...


def complete(model: ChatModel, request: ChatRequest) -> ChatChunk:
    """Run ``request`` to the end: one chunk with all the text, the tool calls and the usage."""
    parts: list[str] = []
    for chunk in model.stream(request):
        parts.append(chunk.text)
        if chunk.done:
            return ChatChunk(
                text="".join(parts),
                done=True,
                tool_calls=chunk.tool_calls,
                finish_reason=chunk.finish_reason,
                prompt_tokens=chunk.prompt_tokens,
                completion_tokens=chunk.completion_tokens,
            )
    raise Unavailable(f"model {model.name!r} ended its stream without a final chunk")


@dataclass
class _ToolCallBuffer:
    id: str = ""
    name: str = ""
    arguments: list[str] = field(default_factory=list)


class OpenAIChatModel:
    """``ChatModel`` over an OpenAI-compatible ``/v1`` endpoint. ``model=None`` picks the server's first."""

    def __init__(
        self, base_url: str, model: str | None = None, *, api_key: str = "-", timeout_s: float = 120.0
    ) -> None:
        import openai

        base = base_url.rstrip("/")
        self._client = openai.OpenAI(
            base_url=base if base.endswith("/v1") else base + "/v1", api_key=api_key, timeout=timeout_s
        )
        self._model = model

    @property
    def name(self) -> str:
        if self._model is None:
            models = self._call(lambda: self._client.models.list().data)
            if not models:
                raise FailedPrecondition(f"{self._client.base_url} serves no models")
            self._model = models[0].id
        return self._model

    def stream(self, request: ChatRequest) -> Iterator[ChatChunk]:
        kwargs: dict[str, Any] = {
            "model": self.name,
            "messages": list(request.messages),
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.tools:
            kwargs["tools"] = list(request.tools)
            if request.tool_choice is not None:
                kwargs["tool_choice"] = request.tool_choice
        if request.response_format is not None:
            kwargs["response_format"] = request.response_format
        if request.stop:
            kwargs["stop"] = list(request.stop)
        if request.seed is not None:
            kwargs["seed"] = request.seed
        stream = self._call(lambda: self._client.chat.completions.create(**kwargs))
        calls: dict[int, _ToolCallBuffer] = {}
        finish: str | None = None
        usage = (0, 0)
        for event in self._iterate(stream):
            if event.usage is not None:
                usage = (event.usage.prompt_tokens, event.usage.completion_tokens)
            for choice in event.choices:
                finish = choice.finish_reason or finish
                delta = choice.delta
                for tc in delta.tool_calls or ():
                    buf = calls.setdefault(tc.index, _ToolCallBuffer())
                    buf.id = tc.id or buf.id
                    if tc.function is not None:
                        buf.name += tc.function.name or ""
                        buf.arguments.append(tc.function.arguments or "")
                if delta.content:
                    yield ChatChunk(text=delta.content)
        yield ChatChunk(
            done=True,
            tool_calls=tuple(
                RawToolCall(id=b.id or f"call_{i}", name=b.name, arguments="".join(b.arguments))
                for i, b in sorted(calls.items())
            ),
            finish_reason=finish,
            prompt_tokens=usage[0],
            completion_tokens=usage[1],
        )

    def _iterate(self, stream: Any) -> Iterator[Any]:
        it = iter(stream)
        while True:
            try:
                event = self._call(lambda: next(it))
            except StopIteration:
                return
            yield event

    @staticmethod
    def _call(fn: Any) -> Any:
        """Run one client call, mapping the client's errors to Shipyard's typed errors."""
        import openai

        try:
            return fn()
        except openai.NotFoundError as exc:
            raise NotFound(f"model endpoint: {_message(exc)}") from exc
        except openai.RateLimitError as exc:
            raise ResourceExhausted(f"model endpoint is busy: {_message(exc)}") from exc
        except openai.BadRequestError as exc:
            raise InvalidArgument(f"model endpoint rejected the request: {_message(exc)}") from exc
        except openai.APIStatusError as exc:
            raise Unavailable(f"model endpoint answered {exc.status_code}: {_message(exc)}") from exc
        except openai.APIConnectionError as exc:
            raise Unavailable(f"model endpoint unreachable: {exc}") from exc


def _message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(exc)
