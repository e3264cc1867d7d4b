"""``POST /v1/chat/completions``: messages → chat template → engine → an OpenAI chat completion.

Non-streaming answers one ``chat.completion``; streaming sends ``chat.completion.chunk`` events: the
assistant role first, then content deltas, then the ``finish_reason``, then (with
``stream_options.include_usage``) a usage-only chunk, then ``[DONE]``. With tools in play the text
goes through ``ToolCallParser``: calls come back as ``message.tool_calls`` (streamed as whole
``delta.tool_calls`` entries) with finish_reason "tool_calls".
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from shipyard.engine.outputs import RequestOutput
from shipyard.errors import ShipyardError
from shipyard_services.inference.openai.errors import renamed
from shipyard_services.inference.openai.protocol import ChatCompletionRequest, usage_dict
from shipyard_services.inference.openai.serving_engine import (
    Decode,
    Submission,
    chosen_tokens,
    collect,
    sse_response,
    submit,
    token_text,
)
from shipyard_services.inference.openai.tool_calls import ToolCallParser, render_messages, tool_calling
from shipyard_services.inference.prompting import encode_messages, template_uses_tools
from shipyard_services.inference.serving_models import ServedModels

__all__ = ["create_chat_completion"]

# Engine field -> this request's field.
PARAMS = {"prompt": "messages", "logprobs": "top_logprobs", "max_tokens": "max_tokens"}


async def create_chat_completion(
    request: ChatCompletionRequest, served: ServedModels
) -> JSONResponse | EventSourceResponse:
    calling = tool_calling(request)
    try:
        if calling.tools or any(m.role == "tool" or m.tool_calls for m in request.messages):
            native = template_uses_tools(served.tokenizer)
            messages, tools = render_messages(request, calling.tools, native=native)
        else:
            messages, tools = request.message_dicts(), None
        token_ids = encode_messages(served.tokenizer, messages, field="messages", tools=tools)
    except ShipyardError as exc:
        raise renamed(exc, PARAMS) from None
    sub = submit(
        served,
        request.model,
        token_ids,
        lambda default_max: request.sampling_params(default_max, calling.structured),
        prefix="chatcmpl",
        names=PARAMS,
        timeout=request.request_timeout,
    )
    decode = token_text(served)
    if request.stream:
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        parser = ToolCallParser() if calling.tools else None
        return sse_response(_chunks(sub, decode, include_usage, parser), sub)
    outputs = await collect(sub)
    last = outputs[-1]
    message: dict[str, Any] = {"role": "assistant", "content": "".join(o.text for o in outputs)}
    finish_reason = last.finish_reason
    if calling.tools:
        # Fed delta by delta, exactly as when streaming, so both answers agree.
        parser = ToolCallParser()
        content = "".join(parser.feed(o.text)[0] for o in outputs) + parser.finish()
        if parser.calls:
            message = {"role": "assistant", "content": content or None, "tool_calls": parser.calls}
            finish_reason = _finish_reason(finish_reason, parser)
        else:
            message["content"] = content
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": finish_reason}
    choice["logprobs"] = _logprobs(outputs, decode) if request.logprobs else None
    body = {
        "id": sub.request_id,
        "object": "chat.completion",
        "created": sub.created,
        "model": sub.model,
        "choices": [choice],
        "usage": usage_dict(last.prompt_tokens, last.completion_tokens, last.cached_tokens),
    }
    return JSONResponse(body)


def _finish_reason(reason: str | None, parser: ToolCallParser) -> str | None:
    return "tool_calls" if parser.calls and reason == "stop" else reason


async def _chunks(
    sub: Submission, decode: Decode, include_usage: bool, parser: ToolCallParser | None
) -> AsyncIterator[dict[str, Any]]:
    def chunk(
        delta: dict[str, Any], finish_reason: str | None = None, logprobs: Any = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": sub.request_id,
            "object": "chat.completion.chunk",
            "created": sub.created,
            "model": sub.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish_reason}],
        }
        if include_usage:
            body["usage"] = None
        return body

    yield chunk({"role": "assistant", "content": ""})
    last = None
    async for out in sub.stream:
        last = out
        lps = _logprobs([out], decode) if out.logprobs else None
        content, calls = parser.feed(out.text) if parser else (out.text, [])
        if out.finished and parser:
            content += parser.finish()
        if content or lps:
            yield chunk({"content": content}, None, lps)
        if calls:
            yield chunk({"tool_calls": calls})
        if out.finished:
            yield chunk({}, _finish_reason(out.finish_reason, parser) if parser else out.finish_reason)
    if include_usage and last is not None:
        yield {
            "id": sub.request_id,
            "object": "chat.completion.chunk",
            "created": sub.created,
            "model": sub.model,
            "choices": [],
            "usage": usage_dict(last.prompt_tokens, last.completion_tokens, last.cached_tokens),
        }


def _logprobs(outputs: Sequence[RequestOutput], decode: Decode) -> dict[str, Any]:
    """OpenAI's chat format: ``{"content": [{"token", "logprob", "bytes", "top_logprobs": [...]}]}``."""

    def entry(token: str, logprob: float) -> dict[str, Any]:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}

    return {
        "content": [
            {**entry(token, lp.logprob), "top_logprobs": [entry(decode(t), v) for t, v in lp.top]}
            for token, lp in chosen_tokens(outputs, decode)
        ]
    }
