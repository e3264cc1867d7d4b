"""What chat and completions share: submitting to the engine, collecting or streaming its deltas.

Errors raised at submission (bad sampling values, prompt too long, unknown model, full queue) come
before any response byte, so they are ordinary error responses. Once a stream has started, a failure
(e.g. the deadline passing) is sent as a final ``data: {"error": ...}`` event. Leaving a stream early
— the client disconnecting — closes the engine stream, which aborts the request and frees its blocks.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sse_starlette import EventSourceResponse

from shipyard.engine.outputs import RequestOutput, TokenLogprob
from shipyard.engine.request_stream import AsyncRequestStream
from shipyard.engine.sampling_params import SamplingParams
from shipyard.errors import ShipyardError
from shipyard_services.inference.openai.errors import ParamNames, error_body, renamed
from shipyard_services.inference.serving_models import ServedModels

__all__ = [
    "Decode",
    "Submission",
    "chosen_tokens",
    "collect",
    "new_id",
    "sse_response",
    "submit",
    "token_text",
]

Decode = Callable[[int], str]


def token_text(served: ServedModels) -> Decode:
    """How a token id is shown in logprobs: the token decoded on its own."""
    tokenizer = served.tokenizer
    return lambda token_id: tokenizer.decode([token_id])


def chosen_tokens(outputs: Sequence[RequestOutput], decode: Decode) -> list[tuple[str, TokenLogprob]]:
    """Each generated token's text and logprob entry.

    A one-token delta's own text is the token's text in the answer (decoding a token alone loses the
    leading space of SentencePiece words), so the token strings join up to the returned text.
    """
    pairs = []
    for out in outputs:
        lps = out.logprobs or ()
        if len(lps) == 1:
            pairs.append((out.text, lps[0]))
        else:
            pairs.extend((decode(lp.token_id), lp) for lp in lps)
    return pairs


def new_id(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Submission:
    """A request accepted by the engine: its id, the model name to report and the output stream."""

    request_id: str
    model: str
    stream: AsyncRequestStream
    created: int


def submit(
    served: ServedModels,
    model: str,
    prompt_token_ids: list[int],
    params: Callable[[int], SamplingParams],
    *,
    prefix: str,
    names: ParamNames,
    timeout: float | None,
) -> Submission:
    """Queue the request; ``params(default_max_tokens)`` builds its sampling settings."""
    try:
        adapter = served.resolve(model)
        default_max = max(1, served.engine.max_model_len - len(prompt_token_ids))
        request_id = new_id(prefix)
        deadline = None if timeout is None else time.monotonic() + timeout
        stream = served.engine.generate(
            prompt_token_ids, params(default_max), request_id=request_id, adapter=adapter, deadline=deadline
        )
    except ShipyardError as exc:
        raise renamed(exc, names) from None
    return Submission(request_id, adapter or served.base_name, stream, int(time.time()))


async def collect(sub: Submission) -> list[RequestOutput]:
    """Every delta of a request, in order (the last one is finished)."""
    outputs = []
    try:
        async for out in sub.stream:
            outputs.append(out)
    finally:
        await sub.stream.aclose()
    return outputs


def sse_response(events: AsyncIterator[dict[str, Any]], sub: Submission) -> EventSourceResponse:
    """``data: {...}`` per event, then ``data: [DONE]``; errors after the start become an error event."""

    async def body() -> AsyncIterator[dict[str, str]]:
        try:
            async for event in events:
                yield {"data": json.dumps(event, separators=(",", ":"))}
        except ShipyardError as exc:
            yield {"data": json.dumps(error_body(exc))}
        finally:
            # Reached on normal end, on error and when the client went away (the task is cancelled).
            await sub.stream.aclose()
        yield {"data": "[DONE]"}

    return EventSourceResponse(body(), sep="\n", headers={"Cache-Control": "no-cache"})
