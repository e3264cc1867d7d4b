"""What the engine hands back: a streamed ``RequestOutput`` delta per request per step, and stats."""

from __future__ import annotations

from dataclasses import dataclass

from shipyard.errors import ShipyardError

__all__ = ["EngineStats", "RequestOutput", "TokenLogprob"]


@dataclass(frozen=True)
class TokenLogprob:
    """The chosen token's log-probability and the ``top`` most likely alternatives (id, logprob).

    Log-probabilities are those of the model's raw distribution (before temperature, penalties and
    top-k/p), as OpenAI and vLLM report them.
    """

    token_id: int
    logprob: float
    top: tuple[tuple[int, float], ...] = ()


@dataclass(frozen=True)
class RequestOutput:
    """One step's news about a request: the new text/tokens, and the running totals."""

    request_id: str
    text: str  # delta since the previous output of this request
    token_ids: tuple[int, ...]  # delta
    logprobs: tuple[TokenLogprob, ...] | None  # delta; None unless the request asked for logprobs
    finished: bool
    finish_reason: str | None  # "stop" | "length" | "abort" once finished
    prompt_tokens: int
    completion_tokens: int  # cumulative
    cached_tokens: int  # prompt tokens served from the prefix cache
    error: ShipyardError | None = None  # set when the step computing this request failed
    # Once, in the request's first output, when SamplingParams.prompt_logprobs is set: one entry per
    # prompt token, None for the first (nothing predicts it).
    prompt_logprobs: tuple[TokenLogprob | None, ...] | None = None


@dataclass(frozen=True)
class EngineStats:
    """A snapshot of the engine's load and cache state."""

    num_waiting: int
    num_running: int
    num_blocks: int
    num_free_blocks: int
    kv_cache_usage: float  # fraction of KV blocks held by live sequences
    prefix_cache_hit_rate: float  # prompt tokens served from cache / prompt tokens looked up
    num_preemptions: int
    prompt_tokens_total: int
    generation_tokens_total: int
