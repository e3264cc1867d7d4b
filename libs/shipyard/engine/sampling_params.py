"""How one request wants its tokens chosen: ``SamplingParams`` and its validation.

Semantics follow the APIs clients already use: ``repetition_penalty`` is Hugging Face's (divides
positive logits of every token seen in the prompt or output), ``presence_penalty`` and
``frequency_penalty`` are OpenAI's (subtracted per output-token occurrence). ``validate`` names the
offending field so the HTTP/gRPC edges can return it as a 400 / INVALID_ARGUMENT. ``structured``
constrains the output to a grammar (``shipyard.engine.structured``); the engine compiles it on submit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from shipyard.engine.structured import StructuredOutput
from shipyard.errors import InvalidArgument

__all__ = ["MAX_LOGPROBS", "SamplingParams"]

MAX_LOGPROBS = 20  # OpenAI's top_logprobs limit


@dataclass(frozen=True)
class SamplingParams:
    """Per-request sampling settings; ``temperature == 0`` means greedy (argmax)."""

    max_tokens: int = 16
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 or -1 = off
    min_p: float = 0.0  # 0 = off; else drop tokens below min_p * p(most likely token)
    repetition_penalty: float = 1.0
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    stop: tuple[str, ...] = ()
    stop_token_ids: tuple[int, ...] = ()
    ignore_eos: bool = False
    seed: int | None = None
    logprobs: int | None = None  # None = off; N >= 0 = chosen token's logprob plus the top N
    # vLLM's prompt_logprobs: None = off; N >= 0 = each prompt token's logprob plus the top N there
    # (computed over the whole prompt, so such requests bypass the prefix cache).
    prompt_logprobs: int | None = None
    n: int = 1
    structured: StructuredOutput | None = None  # None = unconstrained

    def __post_init__(self) -> None:
        # Accept lists from JSON/proto edges while keeping the dataclass hashable and immutable.
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        elif not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))
        if not isinstance(self.stop_token_ids, tuple):
            object.__setattr__(self, "stop_token_ids", tuple(self.stop_token_ids))

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    @property
    def has_penalties(self) -> bool:
        return self.repetition_penalty != 1.0 or self.presence_penalty != 0.0 or self.frequency_penalty != 0.0

    def validate(self, vocab_size: int | None = None) -> SamplingParams:
        """Raise ``InvalidArgument`` naming the first bad field; returns ``self`` for chaining."""
        _check_int("max_tokens", self.max_tokens, low=1)
        _check_float("temperature", self.temperature, low=0.0, high=100.0)
        _check_float("top_p", self.top_p, low=0.0, high=1.0, low_open=True)
        _check_int("top_k", self.top_k, low=-1)
        _check_float("min_p", self.min_p, low=0.0, high=1.0)
        _check_float("repetition_penalty", self.repetition_penalty, low=0.0, high=100.0, low_open=True)
        _check_float("presence_penalty", self.presence_penalty, low=-2.0, high=2.0)
        _check_float("frequency_penalty", self.frequency_penalty, low=-2.0, high=2.0)
        for i, s in enumerate(self.stop):
            if not isinstance(s, str) or not s:
                raise InvalidArgument.field(f"stop[{i}]", "stop strings must be non-empty strings")
        for i, t in enumerate(self.stop_token_ids):
            high = None if vocab_size is None else vocab_size - 1
            _check_int(f"stop_token_ids[{i}]", t, low=0, high=high)
        if not isinstance(self.ignore_eos, bool):
            raise InvalidArgument.field("ignore_eos", "must be a boolean")
        if self.seed is not None:
            _check_int("seed", self.seed, low=0, high=2**63 - 1)
        if self.logprobs is not None:
            _check_int("logprobs", self.logprobs, low=0, high=MAX_LOGPROBS)
        if self.prompt_logprobs is not None:
            _check_int("prompt_logprobs", self.prompt_logprobs, low=0, high=MAX_LOGPROBS)
        if self.n != 1:
            raise InvalidArgument.field("n", "only n=1 is supported (one completion per request)")
        if self.structured is not None:
            if not isinstance(self.structured, StructuredOutput):
                raise InvalidArgument.field("structured", "must be a StructuredOutput")
            self.structured.validate()
        return self


def _check_int(field: str, value: object, *, low: int, high: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument.field(field, f"must be an integer, got {value!r}")
    if value < low:
        raise InvalidArgument.field(field, f"must be >= {low}, got {value}")
    if high is not None and value > high:
        raise InvalidArgument.field(field, f"must be <= {high}, got {value}")


def _check_float(field: str, value: object, *, low: float, high: float, low_open: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument.field(field, f"must be a finite number, got {value!r}")
    if value < low or (low_open and value == low):
        raise InvalidArgument.field(field, f"must be {'>' if low_open else '>='} {low}, got {value}")
    if value > high:
        raise InvalidArgument.field(field, f"must be <= {high}, got {value}")
