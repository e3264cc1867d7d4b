"""``POST /v1/completions``: a text or token-id prompt → engine → an OpenAI text completion.

One prompt per request (a list holding one prompt is accepted, as clients send it that way); ``echo``
and ``suffix`` need prompt log-probabilities and infilling, which the engine does not compute, so they
are rejected by name rather than ignored.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from shipyard.engine.outputs import RequestOutput
from shipyard.errors import InvalidArgument
from shipyard.wire.inference import PromptInput
from shipyard_services.inference.openai.protocol import CompletionRequest, usage_dict
from shipyard_services.inference.openai.serving_engine import (
    Decode,
    Submission,
    chosen_tokens,
    collect,
    sse_response,
    submit,
    token_text,
)
from shipyard_services.inference.prompting import encode
from shipyard_services.inference.serving_models import ServedModels

__all__ = ["create_completion"]

PARAMS = {"max_tokens": "max_tokens"}


async def create_completion(
    request: CompletionRequest, served: ServedModels
) -> JSONResponse | EventSourceResponse:
    if request.echo:
        raise InvalidArgument.field("echo", "echo is not supported (the engine computes no prompt logprobs)")
    if request.suffix:
        raise InvalidArgument.field("suffix", "suffix (infilling) is not supported")
    token_ids = encode(served.tokenizer, _prompt(request.prompt), field="prompt")
    sub = submit(
        served,
        request.model,
        token_ids,
        request.sampling_params,
        prefix="cmpl",
        names=PARAMS,
        timeout=request.request_timeout,
    )
    decode = token_text(served)
    if request.stream:
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return sse_response(_chunks(sub, decode, include_usage, request.logprobs is not None), sub)
    outputs = await collect(sub)
    last = outputs[-1]
    body = _completion(
        sub,
        "".join(o.text for o in outputs),
        last.finish_reason,
        _logprobs(outputs, decode) if request.logprobs is not None else None,
    )
    body["usage"] = usage_dict(last.prompt_tokens, last.completion_tokens, last.cached_tokens)
    return JSONResponse(body)


def _prompt(prompt: str | list[int] | list[str] | list[list[int]]) -> PromptInput:
    if isinstance(prompt, str):
        return PromptInput(text=prompt)
    if not prompt:
        raise InvalidArgument.field("prompt", "must not be empty")
    if all(isinstance(t, int) for t in prompt):
        return PromptInput(token_ids=tuple(prompt))  # type: ignore[arg-type]
    if len(prompt) != 1:
        raise InvalidArgument.field("prompt", "one prompt per request: send several requests concurrently")
    return _prompt(prompt[0])  # type: ignore[arg-type]


def _completion(sub: Submission, text: str, finish_reason: str | None, logprobs: Any) -> dict[str, Any]:
    return {
        "id": sub.request_id,
        "object": "text_completion",
        "created": sub.created,
        "model": sub.model,
        "choices": [{"index": 0, "text": text, "logprobs": logprobs, "finish_reason": finish_reason}],
    }


async def _chunks(
    sub: Submission, decode: Decode, include_usage: bool, want_logprobs: bool
) -> AsyncIterator[dict[str, Any]]:
    last = None
    offset = 0
    async for out in sub.stream:
        last = out
        lps = _logprobs([out], decode, offset) if want_logprobs else None
        offset += len(out.text)
        if out.text or out.finished:
            body = _completion(sub, out.text, out.finish_reason if out.finished else None, lps)
            if include_usage:
                body["usage"] = None
            yield body
    if include_usage and last is not None:
        body = _completion(sub, "", None, None)
        body["choices"] = []
        body["usage"] = usage_dict(last.prompt_tokens, last.completion_tokens, last.cached_tokens)
        yield body


def _logprobs(outputs: Sequence[RequestOutput], decode: Decode, offset: int = 0) -> dict[str, Any]:
    """OpenAI's legacy format: parallel lists of tokens, their logprobs, top alternatives and offsets."""
    pairs = chosen_tokens(outputs, decode)
    tokens = [token for token, _ in pairs]
    logprobs = [lp for _, lp in pairs]
    offsets = []
    for token in tokens:
        offsets.append(offset)
        offset += len(token)
    return {
        "tokens": tokens,
        "token_logprobs": [lp.logprob for lp in logprobs],
        "top_logprobs": [{decode(t): v for t, v in lp.top} for lp in logprobs],
        "text_offset": offsets,
    }
