"""Wire <-> domain conversion for the inference service (``shipyard.v1.InferenceService``).

Server side: a ``GenerateRequest`` becomes a ``PromptInput`` and the engine's ``SamplingParams``;
the engine's ``RequestOutput`` deltas become ``GenerateResponse`` messages. Client side: the reverse,
so a caller builds requests from the same domain types. Field paths in errors are the request's
(``sampling.temperature``), see ``request_field``. ``sampling.structured`` (a JSON schema, any JSON
object, a regex or a Lark grammar) becomes the engine's ``SamplingParams.structured``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields
from typing import Any

from google.protobuf import empty_pb2

from shipyard.api.v1 import inference_pb2
from shipyard.engine.detokenizer import IncrementalDetokenizer
from shipyard.engine.outputs import RequestOutput, TokenLogprob
from shipyard.engine.sampling_params import SamplingParams
from shipyard.engine.structured import StructuredOutput
from shipyard.errors import FieldViolation, InvalidArgument

__all__ = [
    "ModelInfo",
    "PromptInput",
    "finish_reason_from_pb",
    "finish_reason_to_pb",
    "logprobs_to_pb",
    "model_to_pb",
    "prompt_from_pb",
    "prompt_logprobs_to_pb",
    "prompt_to_pb",
    "prompt_token_texts",
    "request_field",
    "response_pb",
    "sampling_from_pb",
    "sampling_to_pb",
    "structured_from_pb",
    "structured_to_pb",
    "with_request_fields",
]

_SAMPLING_FIELDS = frozenset(f.name for f in fields(SamplingParams))
_OPTIONAL_SCALARS = (
    "max_tokens",
    "temperature",
    "top_p",
    "top_k",
    "min_p",
    "repetition_penalty",
    "presence_penalty",
    "frequency_penalty",
    "seed",
    "logprobs",
    "prompt_logprobs",
)
_FINISH_TO_PB = {
    "stop": inference_pb2.FINISH_REASON_STOP,
    "length": inference_pb2.FINISH_REASON_LENGTH,
    "abort": inference_pb2.FINISH_REASON_ABORT,
}
_FINISH_FROM_PB = {v: k for k, v in _FINISH_TO_PB.items()}


@dataclass(frozen=True)
class PromptInput:
    """Exactly one of: plain text, token ids, or chat messages (``{"role", "content"}`` dicts)."""

    text: str | None = None
    token_ids: tuple[int, ...] | None = None
    messages: tuple[dict[str, str], ...] | None = None

    def __post_init__(self) -> None:
        given = [n for n in ("text", "token_ids", "messages") if getattr(self, n) is not None]
        if len(given) != 1:
            raise InvalidArgument.field("prompt", "exactly one of text, tokens or chat must be set")


@dataclass(frozen=True)
class ModelInfo:
    """A model requests can name: the base model or an adapter on it."""

    name: str
    kind: str  # "base" | "adapter"
    base_model: str = ""
    source: str = ""
    max_model_len: int = 0


def prompt_from_pb(request: inference_pb2.GenerateRequest) -> PromptInput:
    which = request.WhichOneof("prompt")
    if which == "text":
        if not request.text:
            raise InvalidArgument.field("text", "must not be empty")
        return PromptInput(text=request.text)
    if which == "tokens":
        if not request.tokens.token_ids:
            raise InvalidArgument.field("tokens.token_ids", "must hold at least one token")
        return PromptInput(token_ids=tuple(request.tokens.token_ids))
    if which == "chat":
        if not request.chat.messages:
            raise InvalidArgument.field("chat.messages", "must hold at least one message")
        for i, m in enumerate(request.chat.messages):
            if not m.role:
                raise InvalidArgument.field(f"chat.messages[{i}].role", "must not be empty")
        return PromptInput(
            messages=tuple({"role": m.role, "content": m.content} for m in request.chat.messages)
        )
    raise InvalidArgument.field("prompt", "set one of text, tokens or chat")


def prompt_to_pb(prompt: PromptInput, request: inference_pb2.GenerateRequest) -> None:
    """Fill ``request``'s prompt oneof from ``prompt``."""
    if prompt.text is not None:
        request.text = prompt.text
    elif prompt.token_ids is not None:
        request.tokens.token_ids.extend(prompt.token_ids)
    else:
        assert prompt.messages is not None
        request.chat.messages.extend(
            inference_pb2.ChatMessage(role=m["role"], content=m["content"]) for m in prompt.messages
        )


def sampling_from_pb(pb: inference_pb2.SamplingParams) -> SamplingParams:
    """Only the fields the caller set; the rest keep ``SamplingParams``'s defaults. Not validated here."""
    kwargs: dict[str, Any] = {name: getattr(pb, name) for name in _OPTIONAL_SCALARS if pb.HasField(name)}
    kwargs["stop"] = tuple(pb.stop)
    kwargs["stop_token_ids"] = tuple(pb.stop_token_ids)
    kwargs["ignore_eos"] = pb.ignore_eos
    if pb.HasField("structured"):
        kwargs["structured"] = structured_from_pb(pb.structured)
    return SamplingParams(**kwargs)


def sampling_to_pb(params: SamplingParams) -> inference_pb2.SamplingParams:
    pb = inference_pb2.SamplingParams(
        stop=list(params.stop), stop_token_ids=list(params.stop_token_ids), ignore_eos=params.ignore_eos
    )
    for name in _OPTIONAL_SCALARS:
        value = getattr(params, name)
        if value is not None:
            setattr(pb, name, value)
    if params.structured is not None:
        pb.structured.CopyFrom(structured_to_pb(params.structured))
    return pb


def structured_from_pb(pb: inference_pb2.StructuredOutput) -> StructuredOutput:
    """The engine's constraint; its ``field`` is the engine path (``structured.json_schema``), which
    ``request_field`` turns into the request's (``sampling.structured.json_schema``). The grammar
    itself is checked when the engine compiles it on submit."""
    kind = pb.WhichOneof("kind")
    if kind is None:
        raise InvalidArgument.field(
            request_field("structured"), "set one of json_schema, json_object, regex or lark"
        )
    if kind == "json_object":
        return StructuredOutput("json_object", field="structured.json_object")
    return StructuredOutput(kind, getattr(pb, kind), field=f"structured.{kind}")


def structured_to_pb(structured: StructuredOutput) -> inference_pb2.StructuredOutput:
    if structured.kind == "json_object":
        return inference_pb2.StructuredOutput(json_object=empty_pb2.Empty())
    return inference_pb2.StructuredOutput(**{structured.kind: structured.spec})


def request_field(field_path: str) -> str:
    """The request's path for an engine field: ``temperature`` -> ``sampling.temperature``."""
    head = field_path.split("[", 1)[0].split(".", 1)[0]
    return f"sampling.{field_path}" if head in _SAMPLING_FIELDS else field_path


def with_request_fields(error: InvalidArgument) -> InvalidArgument:
    """``error`` with its violations renamed to request paths (see ``request_field``)."""
    violations = [FieldViolation(request_field(v.field), v.description) for v in error.violations]
    message = error.message
    if len(error.violations) == 1 and message == f"invalid {error.violations[0].field}":
        message = f"invalid {violations[0].field}"
    return InvalidArgument(message, violations=violations)


def finish_reason_to_pb(reason: str | None) -> int:
    return _FINISH_TO_PB.get(reason or "", inference_pb2.FINISH_REASON_UNSPECIFIED)


def finish_reason_from_pb(reason: int) -> str | None:
    return _FINISH_FROM_PB.get(reason)


def logprobs_to_pb(
    logprobs: Iterable[TokenLogprob], decode: Callable[[int], str]
) -> list[inference_pb2.TokenLogprob]:
    return [
        inference_pb2.TokenLogprob(
            token_id=lp.token_id,
            token=decode(lp.token_id),
            logprob=lp.logprob,
            top_logprobs=[
                inference_pb2.TopLogprob(token_id=t, token=decode(t), logprob=v) for t, v in lp.top
            ],
        )
        for lp in logprobs
    ]


def prompt_token_texts(tokenizer: Any, token_ids: Sequence[int]) -> list[str]:
    """Each prompt token's text such that the pieces join up to the decoded prompt.

    Decoding tokens one by one drops SentencePiece's word-initial spaces and splits multi-byte
    characters, so the pieces come from the same incremental decoding as streamed output (a token that
    only starts a character gets ``""``, the one completing it the character). Offsets into the prompt
    text (OpenAI's ``text_offset``) are the pieces' running lengths.
    """
    detok = IncrementalDetokenizer(tokenizer)
    texts = [detok.add(t) for t in token_ids]
    if texts:
        texts[-1] += detok.flush()
    return texts


def prompt_logprobs_to_pb(
    entries: Sequence[TokenLogprob | None],
    token_ids: Sequence[int],
    texts: Sequence[str],
    decode: Callable[[int], str],
) -> list[inference_pb2.PromptTokenLogprob]:
    out, offset = [], 0
    for entry, token_id, text in zip(entries, token_ids, texts, strict=True):
        pb = inference_pb2.PromptTokenLogprob(token_id=token_id, token=text, text_offset=offset)
        if entry is not None:
            pb.logprob = entry.logprob
            pb.top_logprobs.extend(
                inference_pb2.TopLogprob(token_id=t, token=decode(t), logprob=v) for t, v in entry.top
            )
        out.append(pb)
        offset += len(text)
    return out


def response_pb(
    outputs: Sequence[RequestOutput],
    model: str,
    decode: Callable[[int], str],
    *,
    prompt_token_ids: Sequence[int] = (),
    prompt_texts: Sequence[str] = (),
) -> inference_pb2.GenerateResponse:
    """One response from one or more consecutive deltas of the same request (concatenated).

    ``prompt_token_ids``/``prompt_texts`` (see ``prompt_token_texts``) are needed when a delta carries
    prompt logprobs.
    """
    last = outputs[-1]
    logprobs = [lp for out in outputs for lp in (out.logprobs or ())]
    scored = next((out.prompt_logprobs for out in outputs if out.prompt_logprobs is not None), None)
    return inference_pb2.GenerateResponse(
        prompt_logprobs=(
            prompt_logprobs_to_pb(scored, prompt_token_ids, prompt_texts, decode) if scored else []
        ),
        request_id=last.request_id,
        model=model,
        text="".join(out.text for out in outputs),
        token_ids=[t for out in outputs for t in out.token_ids],
        logprobs=logprobs_to_pb(logprobs, decode),
        finish_reason=finish_reason_to_pb(last.finish_reason) if last.finished else 0,
        usage=inference_pb2.Usage(
            prompt_tokens=last.prompt_tokens,
            completion_tokens=last.completion_tokens,
            total_tokens=last.prompt_tokens + last.completion_tokens,
            cached_tokens=last.cached_tokens,
        ),
    )


def model_to_pb(info: ModelInfo) -> inference_pb2.Model:
    kind = inference_pb2.MODEL_KIND_BASE if info.kind == "base" else inference_pb2.MODEL_KIND_ADAPTER
    return inference_pb2.Model(
        name=info.name,
        kind=kind,
        base_model=info.base_model,
        source=info.source,
        max_model_len=info.max_model_len,
    )
