"""Any OpenAI-compatible HTTP endpoint (vLLM, our inference service, llama.cpp, OpenAI) as a ``ModelBackend``.

- Log-likelihood: ``POST /v1/completions`` with ``echo=True, logprobs=1, max_tokens=0`` on the text
  ``context + continuation``, as lm-eval's ``local-completions`` does; the continuation's tokens are the
  ones whose ``text_offset`` reaches past the context, so no local tokenizer is needed. ``is_greedy``
  compares each token's log-probability with the best of its ``top_logprobs``.
- Generation: ``POST /v1/chat/completions`` for chat messages (and for text prompts when ``chat=True``),
  ``POST /v1/completions`` for text prompts otherwise; stop strings are sent and also cut locally.

Requests run ``concurrency`` at a time on threads (the stdlib ``urllib``: no extra dependency). Timeouts,
connection errors, 429 and 5xx are retried with exponential backoff (``RetryPolicy``) within a
per-request deadline; a request that still fails is recorded, the others go on, and the call then raises
``RequestsFailed`` carrying every result it did get (``None`` in the failed slots) — the runner scores
those and counts the rest as failed. 401/403/404 mean the endpoint or model is wrong for every request,
so they fail the whole call at once.
"""

from __future__ import annotations

import bisect
import json
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from shipyard.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from shipyard.evaluation.backends.retrying import DEFAULT_RETRY, Retryable, RetryingRequests, RetryPolicy
from shipyard.evaluation.types import (
    GenerationRequest,
    GenerationResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)

__all__ = ["OpenAIBackend", "RetryPolicy"]

T = TypeVar("T")
_RETRIED_STATUS = {408, 409, 429, 500, 502, 503, 504}
_FATAL_STATUS = {401: Unauthenticated, 403: PermissionDenied, 404: NotFound}


class OpenAIBackend(RetryingRequests):
    """Scores and generates through an OpenAI-compatible server at ``base_url`` (``http://host:port``)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        chat: bool = False,
        name: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise InvalidArgument.field("model", f"{base_url!r} is not an http(s) URL")
        if not model:
            raise InvalidArgument.field("model_name", "an OpenAI-compatible endpoint needs a model name")
        if concurrency < 1:
            raise InvalidArgument.field("concurrency", f"must be >= 1, got {concurrency}")
        if retry.attempts < 1:
            raise InvalidArgument.field("retry.attempts", f"must be >= 1, got {retry.attempts}")
        root = base_url.rstrip("/")
        self.base_url = root if root.endswith("/v1") else root + "/v1"
        self.model = model
        self.name = name or model
        self.api_key = api_key
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retry = retry
        self.chat = chat
        self._sleep = sleep
        self._clock = clock

    # -- the two backend calls ---------------------------------------------------------------------

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        return self.map_requests(self._loglikelihood_one, requests)

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        return self.map_requests(self._generate_one, requests)

    def _loglikelihood_one(self, request: LoglikelihoodRequest) -> LoglikelihoodResult:
        context, continuation = request.context, request.continuation
        spaces = len(context) - len(context.rstrip())  # lm-eval moves them into the continuation
        if spaces:
            context, continuation = context[:-spaces], context[-spaces:] + continuation
        body = {
            "model": self.model,
            "prompt": context + continuation,
            "max_tokens": 0,
            "echo": True,
            "logprobs": 1,
            "temperature": 0.0,
        }
        choice = self._post("completions", body)["choices"][0]
        logprobs = choice.get("logprobs") or {}
        offsets, values, tops = (logprobs.get(k) for k in ("text_offset", "token_logprobs", "top_logprobs"))
        if not offsets or values is None:
            raise FailedPrecondition(
                f"endpoint {self.base_url} returned no echoed prompt logprobs; log-likelihood tasks need "
                "/v1/completions with echo=true and logprobs (use generation tasks with this endpoint)"
            )
        end = len(context + continuation)
        first = max(0, bisect.bisect_right(offsets, len(context)) - 1) if context else 0
        last = bisect.bisect_left(offsets, end)  # tokens generated past the prompt are not scored
        picked = [(values[i], (tops or [None] * len(values))[i]) for i in range(first, last)]
        if not picked or any(v is None for v, _ in picked):
            raise InvalidArgument.field(
                "context", "the endpoint gave no log-probability for the continuation (empty context?)"
            )
        greedy = all(top is not None and v >= max(top.values()) - 1e-6 for v, top in picked)
        return LoglikelihoodResult(float(sum(v for v, _ in picked)), greedy, len(picked))

    def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "temperature": request.temperature,
            "seed": request.seed,
        }
        if request.stop:
            body["stop"] = list(request.stop)
        if isinstance(request.prompt, list) or self.chat:
            messages = (
                request.prompt
                if isinstance(request.prompt, list)
                else [{"role": "user", "content": request.prompt}]
            )
            choice = self._post("chat/completions", {**body, "messages": messages})["choices"][0]
            text = (choice.get("message") or {}).get("content") or ""
        else:
            choice = self._post("completions", {**body, "prompt": request.prompt})["choices"][0]
            text = choice.get("text") or ""
        cut = min((text.find(s) for s in request.stop if s and s in text), default=-1)
        if cut >= 0:
            text = text[:cut]
        reason = "length" if choice.get("finish_reason") == "length" and cut < 0 else "stop"
        return GenerationResult(text, reason)

    # -- HTTP --------------------------------------------------------------------------------------

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/{path}"
        headers = {"Content-Type": "application/json"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        http = urllib.request.Request(url, json.dumps(body).encode(), headers, method="POST")
        try:
            with urllib.request.urlopen(http, timeout=self.timeout_s) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            detail = error.read()[:300].decode(errors="replace")
            message = f"{url} answered HTTP {error.code}: {detail}"
            if error.code in _RETRIED_STATUS:
                raise Retryable(Unavailable(message)) from error
            if error.code in _FATAL_STATUS:
                raise _FATAL_STATUS[error.code](message) from error
            raise InvalidArgument(message) from error
        except TimeoutError as error:
            raise Retryable(DeadlineExceeded(f"{url} did not answer within {self.timeout_s:g} s")) from error
        except (urllib.error.URLError, ConnectionError) as error:
            reason = getattr(error, "reason", error)
            if isinstance(reason, TimeoutError | socket.timeout):
                raise Retryable(
                    DeadlineExceeded(f"{url} did not answer within {self.timeout_s:g} s")
                ) from error
            raise Retryable(Unavailable(f"cannot reach {url}: {reason}")) from error
        try:
            data = json.loads(payload)
            if not data.get("choices"):
                raise ValueError("no choices")
        except (ValueError, AttributeError) as error:
            raise Retryable(Unavailable(f"{url} returned a malformed response: {error}")) from error
        return data  # type: ignore[no-any-return]
