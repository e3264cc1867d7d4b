"""The OpenAI API's request and response bodies, as pydantic models (the subset Shipyard serves).

Requests forbid unknown fields, so a feature we do not implement (``functions``, ``audio``, ...) is a
400 naming it rather than silently ignored. ``response_format`` (text / json_object / json_schema)
becomes the engine's ``StructuredOutput``; ``tools``/``tool_choice`` are turned into a prompt and a
grammar by ``tool_calls``. Values are range-checked by the engine's
``SamplingParams.validate`` (one set of rules for HTTP and gRPC); here only types and shapes are.
Extensions beyond OpenAI's API follow vLLM's names (``top_k``, ``min_p``, ``repetition_penalty``,
``ignore_eos``, ``stop_token_ids``); ``request_timeout`` (seconds) sets the request's deadline.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool

from shipyard.engine.sampling_params import SamplingParams
from shipyard.engine.structured import StructuredOutput
from shipyard.errors import InvalidArgument

__all__ = [
    "ChatCompletionRequest",
    "ChatMessage",
    "CompletionRequest",
    "FunctionDefinition",
    "NamedToolChoice",
    "ResponseFormat",
    "LoadLoraAdapterRequest",
    "StreamOptions",
    "Tool",
    "ToolCall",
    "ToolChoice",
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


class FunctionCall(_Request):
    name: str
    arguments: str  # a JSON object, as text (OpenAI's format)


class ToolCall(_Request):
    """A call the assistant made earlier in the conversation."""

    id: str
    type: Literal["function"] = "function"
    function: FunctionCall


class ChatMessage(_Request):
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None  # assistant messages
    tool_call_id: str | None = None  # tool messages: the call this answers

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class FunctionDefinition(_Request):
    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    parameters: dict[str, Any] | None = None  # a JSON schema; None = no arguments
    strict: bool | None = None


class Tool(_Request):
    type: Literal["function"]
    function: FunctionDefinition


class FunctionName(_Request):
    name: str


class NamedToolChoice(_Request):
    type: Literal["function"]
    function: FunctionName


ToolChoice = Literal["none", "auto", "required"] | NamedToolChoice


class JsonSchemaFormat(_Request):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")
    description: str | None = None
    # ``schema`` shadows a BaseModel attribute, hence the alias.
    json_schema: dict[str, Any] = Field(default_factory=dict, alias="schema")
    strict: bool | None = None


class ResponseFormat(_Request):
    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchemaFormat | None = None

    def structured(self) -> StructuredOutput | None:
        if self.type == "text":
            return None
        if self.type == "json_object":
            return StructuredOutput("json_object", field="response_format")
        if self.json_schema is None:
            raise InvalidArgument.field("response_format.json_schema", "required when type is json_schema")
        return StructuredOutput.json_schema(
            self.json_schema.json_schema, field="response_format.json_schema.schema"
        )


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
    response_format: ResponseFormat | None = None

    def _sampling(
        self,
        max_tokens: int,
        logprobs: int | None,
        prompt_logprobs: int | None = None,
        structured: StructuredOutput | None = None,
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
            structured=structured,
            **{k: v for k, v in optional.items() if v is not None},
        )


class ChatCompletionRequest(_SamplingFields):
    messages: list[ChatMessage]
    max_tokens: int | None = None
    max_completion_tokens: int | None = None
    logprobs: StrictBool = False
    top_logprobs: int | None = None
    tools: list[Tool] | None = Field(default=None, min_length=1)  # OpenAI rejects an empty list too
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: StrictBool | None = None

    def sampling_params(
        self, default_max_tokens: int, structured: StructuredOutput | None = None
    ) -> SamplingParams:
        """Without max_tokens, generate up to the end of the context window (as OpenAI and vLLM do).

        ``structured`` (the tool-call grammar) replaces ``response_format``'s when given.
        """
        limit = self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens
        logprobs = (self.top_logprobs or 0) if self.logprobs else None
        if structured is None and self.response_format is not None:
            structured = self.response_format.structured()
        return self._sampling(default_max_tokens if limit is None else limit, logprobs, None, structured)

    def message_dicts(self) -> list[dict[str, str]]:
        """The messages as a chat template takes them (tool calls and results: see ``tool_calls``)."""
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
        structured = self.response_format.structured() if self.response_format else None
        return self._sampling(limit, self.logprobs, prompt_logprobs, structured)


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
