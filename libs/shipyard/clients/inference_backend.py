"""The inference service over gRPC (``grpc://host:port``) as an evaluation ``ModelBackend``.

Importing this module registers the ``grpc`` scheme with ``shipyard.evaluation.backends`` (the core
cannot import gRPC itself), so ``open_backend("grpc://host:port", model_name=...)`` works afterwards;
an empty model name means the service's base model.

- Log-likelihood: ``Generate`` on the text ``context + continuation`` with ``prompt_logprobs=1`` and
  one token to generate; the continuation's tokens are those whose ``text_offset`` reaches past the
  context (as the OpenAI backend does with ``echo``), so no local tokenizer is needed. ``is_greedy``
  means each was its position's most likely token.
- Generation: ``Generate`` on the text or chat prompt; stop strings are sent and also cut locally.

Requests run ``concurrency`` at a time, with the same ``RetryPolicy`` and failure accounting as
``OpenAIBackend`` (its retry loop is reused, not copied): UNAVAILABLE, RESOURCE_EXHAUSTED (the queue
is full) and DEADLINE_EXCEEDED are retried with exponential backoff; a request that still fails is
recorded and the call raises ``RequestsFailed`` with every result it did get; NOT_FOUND (no such model),
UNAUTHENTICATED, PERMISSION_DENIED and FAILED_PRECONDITION fail the whole call at once.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable, Sequence
from typing import Any

import grpc

from shipyard.api.v1 import inference_pb2, inference_pb2_grpc
from shipyard.errors import (
    DeadlineExceeded,
    FailedPrecondition,
    InvalidArgument,
    ResourceExhausted,
    Unavailable,
)
from shipyard.evaluation.backends import register_backend
from shipyard.evaluation.backends.retrying import DEFAULT_RETRY, Retryable, RetryingRequests, RetryPolicy
from shipyard.evaluation.types import (
    GenerationRequest,
    GenerationResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)
from shipyard.rpc import ClientOptions, connect, from_rpc_error

__all__ = ["InferenceGrpcBackend", "open_grpc_backend"]

SCHEME = "grpc://"
_RETRIED = (Unavailable, ResourceExhausted, DeadlineExceeded)


class InferenceGrpcBackend(RetryingRequests):
    """Scores and generates through ``shipyard.v1.InferenceService`` at ``target`` (``host:port``)."""

    def __init__(
        self,
        target: str,
        model: str = "",
        *,
        concurrency: int = 8,
        timeout_s: float = 60.0,
        retry: RetryPolicy = DEFAULT_RETRY,
        auth_token: str | None = None,
        name: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        address = target.removeprefix(SCHEME).rstrip("/")
        if not address or "/" in address or ":" not in address:
            raise InvalidArgument.field("model", f"{target!r} is not a gRPC address (grpc://host:port)")
        if concurrency < 1:
            raise InvalidArgument.field("concurrency", f"must be >= 1, got {concurrency}")
        if retry.attempts < 1:
            raise InvalidArgument.field("retry.attempts", f"must be >= 1, got {retry.attempts}")
        self.address = address
        self.model = model
        self.name = name or model or f"{SCHEME}{address}"
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.retry = retry
        self._sleep = sleep
        self._clock = clock
        # Retries are ours (RetryPolicy, per request), so the channel's own are off.
        options = ClientOptions(
            default_deadline_seconds=timeout_s, retry_max_attempts=1, auth_token=auth_token
        )
        self._channel = connect(address, options)
        self._stub = inference_pb2_grpc.InferenceServiceStub(self._channel)

    def close(self) -> None:
        self._channel.close()

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
        sampling = inference_pb2.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        response = self._call(
            inference_pb2.GenerateRequest(model=self.model, text=context + continuation, sampling=sampling)
        )
        scored = list(response.prompt_logprobs)
        if not scored:
            raise FailedPrecondition(
                f"{SCHEME}{self.address} returned no prompt logprobs; the inference service is too old "
                "for log-likelihood tasks (use generation tasks with it)"
            )
        offsets = [entry.text_offset for entry in scored]
        first = max(0, bisect.bisect_right(offsets, len(context)) - 1) if context else 0
        picked = scored[first:]
        if not picked or any(not entry.HasField("logprob") for entry in picked):
            raise InvalidArgument.field(
                "context", "the service gave no log-probability for the continuation (empty context?)"
            )
        greedy = all(e.top_logprobs and e.top_logprobs[0].token_id == e.token_id for e in picked)
        return LoglikelihoodResult(float(sum(e.logprob for e in picked)), greedy, len(picked))

    def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        sampling = inference_pb2.SamplingParams(
            max_tokens=request.max_tokens, temperature=request.temperature, stop=list(request.stop)
        )
        if request.temperature > 0:
            sampling.seed = request.seed
        pb = inference_pb2.GenerateRequest(model=self.model, sampling=sampling)
        if isinstance(request.prompt, list):
            pb.chat.messages.extend(
                inference_pb2.ChatMessage(role=m["role"], content=m["content"]) for m in request.prompt
            )
        else:
            pb.text = request.prompt
        response = self._call(pb)
        text = response.text
        cut = min((text.find(s) for s in request.stop if s and s in text), default=-1)
        if cut >= 0:
            text = text[:cut]
        length = response.finish_reason == inference_pb2.FINISH_REASON_LENGTH and cut < 0
        return GenerationResult(text, "length" if length else "stop")

    def _call(self, request: inference_pb2.GenerateRequest) -> inference_pb2.GenerateResponse:
        try:
            return self._stub.Generate(request, timeout=self.timeout_s)
        except grpc.RpcError as rpc_error:
            error = from_rpc_error(rpc_error)
            if isinstance(error, _RETRIED):
                raise Retryable(error) from rpc_error
            raise error from rpc_error


def open_grpc_backend(
    model_ref: str, *, model_name: str | None = None, api_key: str | None = None, **options: Any
) -> InferenceGrpcBackend:
    """``open_backend``'s factory for ``grpc://host:port`` (``options`` as ``InferenceGrpcBackend``'s)."""
    return InferenceGrpcBackend(model_ref, model_name or "", auth_token=api_key, **options)


register_backend("grpc", open_grpc_backend)
