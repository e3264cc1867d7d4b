"""Shipyard's own inference engine, in this process, as a ``ModelBackend`` (``engine:<model ref>``).

Everything goes through the engine's continuous batching: all of a call's requests are submitted at
once (as far as the engine's queue admits them) and finish in whatever order the scheduler runs them.

- Log-likelihood: ``context + continuation`` (tokenized the lm-eval way, exactly as ``HFBackend`` does)
  is one request with ``prompt_logprobs=1``; the continuation's log-probability is the sum of its
  tokens' prompt logprobs, and ``is_greedy`` means each was the most likely token at its position.
  Identical inputs (single-token multiple-choice answers) are scored once. The prompt keeps its last
  ``max_model_len - 1`` tokens, since the engine always computes one next token.
- Generation: greedy unless the request asks for a temperature (then its seed); stop strings end the
  request in the engine, and the text is decoded and cut like ``HFBackend``'s, so greedy generations
  are the same text.

The engine is an ``LLMEngine`` this backend steps itself, or a running ``AsyncLLMEngine`` shared with a
server (requests then go through its queue with everyone else's).
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shipyard.engine.async_engine import AsyncLLMEngine
from shipyard.engine.llm_engine import LLMEngine
from shipyard.engine.outputs import RequestOutput
from shipyard.engine.sampling_params import SamplingParams
from shipyard.errors import Internal, InvalidArgument, ResourceExhausted, ShipyardError
from shipyard.evaluation.backends.failures import RequestsFailed
from shipyard.evaluation.backends.tokenization import LmEvalTokenization
from shipyard.evaluation.types import (
    GenerationRequest,
    GenerationResult,
    LoglikelihoodRequest,
    LoglikelihoodResult,
)

if TYPE_CHECKING:
    from shipyard.config import InferenceConfig
    from shipyard.models.local import LocalModel

__all__ = ["EngineBackend"]

_Prompt = tuple[list[int], SamplingParams]


class EngineBackend(LmEvalTokenization):
    """Scores and generates through an ``LLMEngine`` (stepped here) or a started ``AsyncLLMEngine``."""

    def __init__(self, engine: LLMEngine | AsyncLLMEngine, tokenizer: Any, *, name: str) -> None:
        if not isinstance(engine, LLMEngine | AsyncLLMEngine):
            raise InvalidArgument.field("engine", f"must be an LLMEngine or AsyncLLMEngine, not {engine!r}")
        self.engine = engine
        self.tokenizer = tokenizer
        self.name = name
        self.max_length = engine.max_model_len

    @classmethod
    def load(cls, model: LocalModel, config: InferenceConfig | None = None) -> EngineBackend:
        """Load ``model`` into a new engine (``config`` defaults to ``InferenceConfig()``)."""
        from shipyard.config import InferenceConfig
        from shipyard.engine.model_runner import load_runner

        config = config or InferenceConfig()
        runner, tokenizer = load_runner(model, config)
        return cls(LLMEngine(runner, tokenizer, config), tokenizer, name=model.name)

    # -- log-likelihood ----------------------------------------------------------------------------

    def loglikelihood(self, requests: Sequence[LoglikelihoodRequest]) -> list[LoglikelihoodResult]:
        pairs = [self.encode_pair(r.context, r.continuation) for r in requests]
        for i, (_, continuation) in enumerate(pairs):
            if not continuation:
                raise InvalidArgument.field(f"requests[{i}].continuation", "encodes to no tokens")
        keep = self.max_length - 1  # the engine computes one token after the prompt
        inputs = [tuple((c + k)[-keep:]) for c, k in pairs]
        unique = list(dict.fromkeys(inputs))
        params = SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        outcomes = dict(zip(unique, self._run([(list(p), params) for p in unique]), strict=True))
        results: list[LoglikelihoodResult | None] = []
        errors: dict[int, ShipyardError] = {}
        for i, (prompt, (_, continuation)) in enumerate(zip(inputs, pairs, strict=True)):
            outcome = outcomes[prompt]
            if isinstance(outcome, ShipyardError):
                errors[i] = outcome
                results.append(None)
                continue
            scored = outcome[0].prompt_logprobs or ()
            count = min(len(continuation), len(prompt) - 1)
            entries = scored[len(prompt) - count :]
            if len(scored) != len(prompt) or any(e is None for e in entries):
                errors[i] = Internal(f"the engine returned no prompt logprobs for request {i}")
                results.append(None)
                continue
            total = sum(e.logprob for e in entries if e is not None)
            greedy = all(e is not None and e.top and e.top[0][0] == e.token_id for e in entries)
            results.append(LoglikelihoodResult(float(total), greedy, count))
        return _or_raise(results, errors)

    # -- generation --------------------------------------------------------------------------------

    def generate(self, requests: Sequence[GenerationRequest]) -> list[GenerationResult]:
        prompts: list[_Prompt] = []
        for i, r in enumerate(requests):
            if r.max_tokens < 1:
                raise InvalidArgument.field(f"requests[{i}].max_tokens", f"must be >= 1, got {r.max_tokens}")
            keep = max(1, self.max_length - r.max_tokens)  # what HFBackend keeps, too
            ids = self._encode(self.render(r.prompt))[-keep:] or [self.prefix_token_id]
            params = SamplingParams(
                max_tokens=r.max_tokens,
                temperature=r.temperature,
                stop=r.stop,
                seed=r.seed if r.temperature > 0 else None,
            )
            prompts.append((ids, params))
        results: list[GenerationResult | None] = []
        errors: dict[int, ShipyardError] = {}
        for i, (request, outcome) in enumerate(zip(requests, self._run(prompts), strict=True)):
            if isinstance(outcome, ShipyardError):
                errors[i] = outcome
                results.append(None)
                continue
            tokens = [t for out in outcome for t in out.token_ids]
            # Decoded whole and cut here, as HFBackend does, rather than taking the streamed text.
            text = self.tokenizer.decode(tokens, skip_special_tokens=True)
            cut = min((text.find(s) for s in request.stop if s and s in text), default=-1)
            if cut >= 0:
                text = text[:cut]
            ended = cut >= 0 or outcome[-1].finish_reason == "stop"
            results.append(GenerationResult(text, "stop" if ended else "length"))
        return _or_raise(results, errors)

    # -- driving the engine ------------------------------------------------------------------------

    def _run(self, prompts: Sequence[_Prompt]) -> list[list[RequestOutput] | ShipyardError]:
        """Every prompt's outputs (or the error that ended it), in order; all submitted together."""
        if isinstance(self.engine, AsyncLLMEngine):
            return _run_async(self.engine, prompts)
        return _run_stepped(self.engine, prompts)


def _run_stepped(engine: LLMEngine, prompts: Sequence[_Prompt]) -> list[list[RequestOutput] | ShipyardError]:
    tag = uuid.uuid4().hex[:8]
    outcomes: list[list[RequestOutput] | ShipyardError] = [[] for _ in prompts]
    index: dict[str, int] = {}
    pending = deque(range(len(prompts)))
    while pending or engine.has_unfinished():
        while pending and engine.num_waiting < engine.config.max_queue_len:
            i = pending.popleft()
            request_id = f"eval-{tag}-{i}"
            try:
                engine.add_request(request_id, *prompts[i])
            except ShipyardError as error:
                outcomes[i] = error
                continue
            index[request_id] = i
        for out in engine.step():
            i = index[out.request_id]
            if out.error is not None:
                outcomes[i] = out.error
            elif isinstance(outcomes[i], list):
                outcomes[i].append(out)  # type: ignore[union-attr]  # narrowed by isinstance above
    return outcomes


def _run_async(
    engine: AsyncLLMEngine, prompts: Sequence[_Prompt]
) -> list[list[RequestOutput] | ShipyardError]:
    tag = uuid.uuid4().hex[:8]
    outcomes: list[list[RequestOutput] | ShipyardError] = [[] for _ in prompts]
    in_flight: deque[tuple[int, Any]] = deque()

    def drain_oldest() -> None:
        i, stream = in_flight.popleft()
        try:
            with stream:
                outcomes[i] = list(stream)
        except ShipyardError as error:
            outcomes[i] = error

    for i, (ids, params) in enumerate(prompts):
        while True:
            try:
                in_flight.append((i, engine.generate_sync(ids, params, request_id=f"eval-{tag}-{i}")))
                break
            except ResourceExhausted as error:
                if not in_flight:  # the queue is full of other callers' requests
                    outcomes[i] = error
                    break
                drain_oldest()  # make room: the engine keeps batching the rest meanwhile
            except ShipyardError as error:
                outcomes[i] = error
                break
    while in_flight:
        drain_oldest()
    return outcomes


def _or_raise(results: list[Any], errors: dict[int, ShipyardError]) -> list[Any]:
    if errors:
        raise RequestsFailed(results, errors)
    return results
