"""``POST /v1/chat/completions``: messages → chat template → engine → an OpenAI chat completion.

Non-streaming answers one ``chat.completion``; streaming sends ``chat.completion.chunk`` events: the
assistant role first, then content deltas, then the ``finish_reason``, then (with
``stream_options.include_usage``) a usage-only chunk, then ``[DONE]``.
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
from shipyard_services.inference.prompting import encode_messages
from shipyard_services.inference.serving_models import ServedModels

__all__ = ["create_chat_completion"]

# Engine field -> this request's field.
PARAMS = {"prompt": "messages", "logprobs": "top_logprobs", "max_tokens": "max_tokens"}


async def create_chat_completion(
    request: ChatCompletionRequest, served: ServedModels
) -> JSONResponse | EventSourceResponse:
    try:
        token_ids = encode_messages(served.tokenizer, request.message_dicts(), field="messages")
    except ShipyardError as exc:
        raise renamed(exc, PARAMS) from None
    sub = submit(
        served,
        request.model,
        token_ids,
        request.sampling_params,
        prefix="chatcmpl",
        names=PARAMS,
        timeout=request.request_timeout,
    )
    decode = token_text(served)
    if request.stream:
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return sse_response(_chunks(sub, decode, include_usage), sub)
    outputs = await collect(sub)
    last = outputs[-1]
    message = {"role": "assistant", "content": "".join(o.text for o in outputs)}
    choice: dict[str, Any] = {"index": 0, "message": message, "finish_reason": last.finish_reason}
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


async def _chunks(sub: Submission, decode: Decode, include_usage: bool) -> AsyncIterator[dict[str, Any]]:
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
        if out.text or lps:
            yield chunk({"content": out.text}, None, lps)
        if out.finished:
            yield chunk({}, out.finish_reason)
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
