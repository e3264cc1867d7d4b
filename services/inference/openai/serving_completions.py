"""``POST /v1/completions``: a text or token-id prompt → engine → an OpenAI text completion.

One prompt per request (a list holding one prompt is accepted, as clients send it that way). ``echo``
puts the prompt before the completion and, with ``logprobs``, the prompt tokens' log-probabilities
before the generated ones (the first prompt token has none); ``max_tokens: 0`` with ``echo`` scores
the prompt without generating, which is how lm-eval and our evaluation backend ask an OpenAI endpoint
for log-likelihoods (vLLM answers the same way). ``suffix`` (infilling) is rejected by name.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi.responses import JSONResponse
from sse_starlette import EventSourceResponse

from shipyard.engine.outputs import RequestOutput
from shipyard.errors import InvalidArgument
from shipyard.wire.inference import PromptInput, prompt_token_texts
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

PARAMS = {"max_tokens": "max_tokens", "prompt_logprobs": "logprobs"}


@dataclass(frozen=True)
class _Echo:
    """The prompt as it is shown in front of the completion: its text and its tokens' texts."""

    text: str
    token_ids: list[int]
    token_texts: list[str]
    only: bool  # max_tokens == 0: nothing generated is shown


async def create_completion(
    request: CompletionRequest, served: ServedModels
) -> JSONResponse | EventSourceResponse:
    if request.suffix:
        raise InvalidArgument.field("suffix", "suffix (infilling) is not supported")
    prompt = _prompt(request.prompt)
    token_ids = encode(served.tokenizer, prompt, field="prompt")
    sub = submit(
        served,
        request.model,
        token_ids,
        request.sampling_params,
        prefix="cmpl",
        names=PARAMS,
        timeout=request.request_timeout,
    )
    echo = None
    if request.echo:
        texts = prompt_token_texts(served.tokenizer, token_ids)
        text = prompt.text if prompt.text is not None else "".join(texts)
        echo = _Echo(text, token_ids, texts, request.echo_only)
    decode = token_text(served)
    want_logprobs = request.logprobs is not None
    if request.stream:
        include_usage = bool(request.stream_options and request.stream_options.include_usage)
        return sse_response(_chunks(sub, decode, include_usage, want_logprobs, echo), sub)
    outputs = await collect(sub)
    first, last = outputs[0], outputs[-1]
    shown = [] if echo and echo.only else outputs
    text = "".join(o.text for o in shown)
    logprobs = None
    if want_logprobs:
        logprobs = _logprobs(shown, decode, len(echo.text) if echo else 0)
        if echo:
            logprobs = _with_prompt(echo, first, decode, logprobs)
    finish = "length" if echo and echo.only else last.finish_reason
    body = _completion(sub, (echo.text if echo else "") + text, finish, logprobs)
    completion_tokens = 0 if echo and echo.only else last.completion_tokens
    body["usage"] = usage_dict(last.prompt_tokens, completion_tokens, last.cached_tokens)
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
    sub: Submission, decode: Decode, include_usage: bool, want_logprobs: bool, echo: _Echo | None
) -> AsyncIterator[dict[str, Any]]:
    last = None
    offset = len(echo.text) if echo else 0
    pending_echo = echo  # shown in front of the first chunk
    async for out in sub.stream:
        last = out
        hidden = echo is not None and echo.only
        text = "" if hidden else out.text
        lps = _logprobs([] if hidden else [out], decode, offset) if want_logprobs else None
        offset += len(text)
        if pending_echo is not None:
            if lps is not None:
                lps = _with_prompt(pending_echo, out, decode, lps)
            text = pending_echo.text + text
            pending_echo = None
        if text or out.finished:
            reason = ("length" if hidden else out.finish_reason) if out.finished else None
            body = _completion(sub, text, reason, lps)
            if include_usage:
                body["usage"] = None
            yield body
    if include_usage and last is not None:
        body = _completion(sub, "", None, None)
        body["choices"] = []
        completion_tokens = 0 if echo and echo.only else last.completion_tokens
        body["usage"] = usage_dict(last.prompt_tokens, completion_tokens, last.cached_tokens)
        yield body


def _with_prompt(
    echo: _Echo, first: RequestOutput, decode: Decode, generated: dict[str, Any]
) -> dict[str, Any]:
    """The prompt tokens' entries (from the request's first output) in front of the generated ones."""
    scored = first.prompt_logprobs or (None,) * len(echo.token_ids)
    offsets, offset = [], 0
    for piece in echo.token_texts:
        offsets.append(offset)
        offset += len(piece)
    return {
        "tokens": echo.token_texts + generated["tokens"],
        "token_logprobs": [None if e is None else e.logprob for e in scored] + generated["token_logprobs"],
        "top_logprobs": [None if e is None else {decode(t): v for t, v in e.top} for e in scored]
        + generated["top_logprobs"],
        "text_offset": offsets + generated["text_offset"],
    }


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
