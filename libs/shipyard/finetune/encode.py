"""Tokenizing finetune records into ``input_ids`` + ``labels`` with assistant-only loss.

Labels line up with ``input_ids`` (the model shifts them): ``-100`` marks a token that is not trained.
With ``train_on="assistant"`` only the assistant replies are trained, each including the end-of-turn token
that closes it (``<|im_end|>``, ``<|eot_id|>``, ``</s>``) so the model learns to stop; whitespace the
template writes after that token is not trained.

Reply spans are found by rendering incrementally and comparing token ids, so they hold for any template
that renders a conversation as a growing prefix: for assistant turn ``i``, the ids of ``messages[:i]`` with
the generation prompt are a prefix of the full ids (the reply starts there) and the ids of
``messages[:i+1]`` are a prefix too (the reply ends there). One token of slack at each boundary allows a
tokenizer that merges across it. A template that rewrites earlier turns (e.g. drops past reasoning) fails
with ``FailedPrecondition`` instead of producing silently wrong labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from shipyard.errors import FailedPrecondition, InvalidArgument
from shipyard.finetune.formats import Conversation, InvalidRecord, Message
from shipyard.finetune.templates import ChatTemplate, render_ids

__all__ = [
    "IGNORE_INDEX",
    "EncodedExample",
    "TrainOn",
    "Truncation",
    "check_encoding_args",
    "encode_conversation",
    "encode_text",
]

IGNORE_INDEX = -100
Truncation = Literal["drop", "truncate"]
TrainOn = Literal["assistant", "all"]


@dataclass(frozen=True)
class EncodedExample:
    """One training sequence. ``truncated``: it was cut to ``max_len`` (``truncation="truncate"``)."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def trained_tokens(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


def encode_conversation(
    conv: Conversation,
    tokenizer: Any,
    template: ChatTemplate,
    *,
    max_len: int,
    train_on: TrainOn = "assistant",
    truncation: Truncation = "drop",
) -> EncodedExample:
    """Tokenize ``conv``; raises ``InvalidRecord`` (``too_long``, ``no_trainable_tokens``) for bad ones."""
    check_encoding_args(max_len=max_len, train_on=train_on, truncation=truncation)
    messages = conv.messages
    full = render_ids(tokenizer, template, messages)
    if train_on == "all":
        labels = list(full)
    else:
        labels = [IGNORE_INDEX] * len(full)
        for start, end in assistant_spans(tokenizer, template, conv, full):
            labels[start:end] = full[start:end]
    return finish(full, labels, max_len=max_len, truncation=truncation)


def assistant_spans(
    tokenizer: Any, template: ChatTemplate, conv: Conversation, full: Sequence[int]
) -> list[tuple[int, int]]:
    """``[start, end)`` token ranges of ``full`` holding each assistant reply and its end-of-turn token."""
    return [
        reply_span(tokenizer, template, conv.messages, i, full)
        for i, message in enumerate(conv.messages)
        if message.role == "assistant"
    ]


def reply_span(
    tokenizer: Any, template: ChatTemplate, messages: Sequence[Message], i: int, full: Sequence[int]
) -> tuple[int, int]:
    """The ``[start, end)`` range of ``full`` (the ids of ``messages``) holding assistant turn ``i``."""
    prefix = render_ids(tokenizer, template, messages[:i], add_generation_prompt=True)
    upto = full if i == len(messages) - 1 else render_ids(tokenizer, template, messages[: i + 1])
    start = common_prefix(prefix, full)
    if start < len(prefix) - 1 or common_prefix(upto, full) < len(upto) - 1:
        raise FailedPrecondition(
            f"chat template {template.name!r} does not render conversations incrementally (turn {i} "
            "renders differently once later turns follow), so assistant tokens cannot be located; "
            "use train_on='all' or another template"
        )
    end = len(upto)
    while end > start + 1 and not tokenizer.decode([full[end - 1]]).strip():
        end -= 1
    return start, end


def encode_text(text: str, tokenizer: Any, *, max_len: int) -> list[EncodedExample]:
    """Continued pretraining: the document (+ EOS) cut into ``max_len`` chunks, every token trained.

    A final chunk of one token is dropped: with nothing after it there is nothing to predict.
    """
    check_encoding_args(max_len=max_len)
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    eos = tokenizer.eos_token_id
    if eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
    chunks = [ids[i : i + max_len] for i in range(0, len(ids), max_len)]
    return [EncodedExample(chunk, list(chunk)) for chunk in chunks if len(chunk) > 1]


def finish(ids: list[int], labels: list[int], *, max_len: int, truncation: Truncation) -> EncodedExample:
    """Apply the length limit and check something is left to train on."""
    truncated = False
    if len(ids) > max_len:
        if truncation == "drop":
            raise InvalidRecord("too_long", "", f"{len(ids)} tokens is longer than max_len {max_len}")
        ids, labels, truncated = ids[:max_len], labels[:max_len], True
    # labels[0] is never a target after the shift, so a lone trained first token trains nothing.
    if all(label == IGNORE_INDEX for label in labels[1:]):
        reason = "the reply lies entirely past max_len" if truncated else "no token is trained"
        raise InvalidRecord("no_trainable_tokens", "", reason)
    return EncodedExample(ids, labels, truncated)


def check_encoding_args(
    *, max_len: int, train_on: str = "assistant", truncation: str = "drop", min_len: int = 2
) -> None:
    """``InvalidArgument`` naming the first bad encoding option."""
    if not isinstance(max_len, int) or isinstance(max_len, bool) or max_len < min_len:
        raise InvalidArgument.field("max_len", f"must be an integer >= {min_len}, got {max_len!r}")
    if train_on not in ("assistant", "all"):
        raise InvalidArgument.field("train_on", f"must be 'assistant' or 'all', got {train_on!r}")
    if truncation not in ("drop", "truncate"):
        raise InvalidArgument.field("truncation", f"must be 'drop' or 'truncate', got {truncation!r}")


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading ids ``a`` and ``b`` share."""
    n = min(len(a), len(b))
    for i in range(n):
        if a[i] != b[i]:
            return i
    return n
