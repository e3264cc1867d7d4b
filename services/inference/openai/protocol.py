"""The OpenAI API's request and response bodies, as pydantic models (the subset Shipyard serves).

Requests forbid unknown fields, so a feature we do not implement (``tools``, ``response_format``, ...)
is a 400 naming it rather than silently ignored. Values are range-checked by the engine's
``SamplingParams.validate`` (one set of rules for HTTP and gRPC); here only types and shapes are.
Extensions beyond OpenAI's API follow vLLM's names (``top_k``, ``min_p``, ``repetition_penalty``,
``ignore_eos``, ``stop_token_ids``); ``request_timeout`` (seconds) sets the request's deadline.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from shipyard.engine.sampling_params import SamplingParams

__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "CompletionRequest",
    "LoadLoraAdapterRequest",
    "StreamOptions",
    "UnloadLoraAdapterRequest",
    "usage_dict",
]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


class StreamOptions(_Request):
    include_usage: StrictBool = False


class TextPart(_Request):
    type: Literal["text"]
    text: str


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class _SamplingFields(_Request):
    """The sampling fields chat and completions share."""

    model: str = ""
    temperature: float | None = None
    top_p: float | None = None
    n: int = 1
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    presence_penalty: float | None = None
    frequency_penalty: float | None = None
    seed: int | None = None
    user: str | None = None
    # vLLM's extensions.
    top_k: int | None = None
    min_p: float | None = None
    repetition_penalty: float | None = None
    ignore_eos: StrictBool = False
    stop_token_ids: list[int] | None = None
    request_timeout: float | None = Field(default=None, gt=0)

    def _sampling(
        self, max_tokens: int, logprobs: int | None, prompt_logprobs: int | None = None
    ) -> SamplingParams:
        optional = {
            "temperature": self.temperature,
            "top_p": self.top_p,
            "top_k": self.top_k,
            "min_p": self.min_p,
            "repetition_penalty": self.repetition_penalty,
            "presence_penalty": self.presence_penalty,
            "frequency_penalty": self.frequency_penalty,
        }
        stop = [self.stop] if isinstance(self.stop, str) else (self.stop or [])
        return SamplingParams(
            max_tokens=max_tokens,
            stop=tuple(stop),
            stop_token_ids=tuple(self.stop_token_ids or ()),
            ignore_eos=self.ignore_eos,
            seed=self.seed,
            logprobs=logprobs,
            prompt_logprobs=prompt_logprobs,
            n=self.n,
            **{k: v for k, v in optional.items() if v is not None},
        )


class ChatCompletionRequest(_SamplingFields):
    messages: list[ChatMessage]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    logprobs: StrictBool = False
    top_logprobs: int | None = None

    def sampling_params(self, default_max_tokens: int) -> SamplingParams:
        """Without max_tokens, generate up to the end of the context window (as OpenAI and vLLM do)."""
        limit = self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens
        logprobs = (self.top_logprobs or 0) if self.logprobs else None
        return self._sampling(default_max_tokens if limit is None else limit, logprobs)

    def message_dicts(self) -> list[dict[str, str]]:
        return [{"role": m.role, "content": m.text()} for m in self.messages]


class CompletionRequest(_SamplingFields):
    prompt: str | list[int] | list[str] | list[list[int]]
    max_tokens: int | None = 16
    logprobs: int | None = None
    echo: StrictBool = False
    suffix: str | None = None

    @property
    def echo_only(self) -> bool:
        """``echo`` with ``max_tokens: 0``: score the prompt, generate nothing (lm-eval's log-likelihood)."""
        return self.echo and self.max_tokens == 0

    def sampling_params(self, default_max_tokens: int) -> SamplingParams:
        limit = default_max_tokens if self.max_tokens is None else self.max_tokens
        # The engine always computes one token; an echo-only request hides it (as vLLM does).
        limit = 1 if self.echo_only else limit
        prompt_logprobs = self.logprobs if self.echo else None
        return self._sampling(limit, self.logprobs, prompt_logprobs)


class LoadLoraAdapterRequest(_Request):
    lora_name: str
    lora_path: str


class UnloadLoraAdapterRequest(_Request):
    lora_name: str
    lora_int_id: int | None = None


def usage_dict(prompt_tokens: int, completion_tokens: int, cached_tokens: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached_tokens},
    }
