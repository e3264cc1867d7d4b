"""Tokenizing preference pairs for DPO: one shared prompt, a chosen and a rejected reply.

Both sides are rendered in full with the chat template (so their ids are exactly what inference builds)
and split where the reply starts; ``prompt_ids`` is the part both sides share, which keeps the split right
even if a tokenizer merged a token across the prompt/reply boundary. Each reply ends with its
end-of-turn token.

Length policy: with ``truncation="drop"`` a pair whose prompt plus longer reply exceeds ``max_len`` is
``too_long``; with ``"truncate"`` the prompt keeps its last tokens (at most half of ``max_len`` when the
replies need the room, the end of a prompt matters most to the reply) and the replies are cut to fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shipyard.finetune.encode import (
    IGNORE_INDEX,
    EncodedExample,
    Truncation,
    check_encoding_args,
    common_prefix,
    reply_span,
)
from shipyard.finetune.formats import InvalidRecord, Message, PreferencePair
from shipyard.finetune.templates import ChatTemplate, render_ids

__all__ = ["EncodedPair", "encode_pair"]


@dataclass(frozen=True)
class EncodedPair:
    """A tokenized DPO pair: the model sees ``prompt_ids + chosen_ids`` and ``prompt_ids + rejected_ids``."""

    prompt_ids: list[int]
    chosen_ids: list[int]
    rejected_ids: list[int]
    truncated: bool = False

    def __len__(self) -> int:
        return len(self.prompt_ids) + max(len(self.chosen_ids), len(self.rejected_ids))

    @property
    def chosen(self) -> EncodedExample:
        """The chosen side as a training sequence, labels on the reply only."""
        return _side(self.prompt_ids, self.chosen_ids)

    @property
    def rejected(self) -> EncodedExample:
        """The rejected side as a training sequence, labels on the reply only."""
        return _side(self.prompt_ids, self.rejected_ids)


def encode_pair(
    pair: PreferencePair,
    tokenizer: Any,
    template: ChatTemplate,
    *,
    max_len: int,
    truncation: Truncation = "drop",
) -> EncodedPair:
    """Tokenize ``pair``; raises ``InvalidRecord('too_long')`` per the length policy above."""
    check_encoding_args(max_len=max_len, truncation=truncation, min_len=4)
    sides = []
    for reply in (pair.chosen, pair.rejected):
        messages = (*pair.prompt, Message("assistant", reply))
        full = render_ids(tokenizer, template, messages)
        sides.append((full, *reply_span(tokenizer, template, messages, len(messages) - 1, full)))
    (good, good_start, good_end), (bad, bad_start, bad_end) = sides
    n = min(good_start, bad_start, common_prefix(good, bad))
    prompt, chosen, rejected = good[:n], good[n:good_end], bad[n:bad_end]
    longest = max(len(chosen), len(rejected))
    if len(prompt) + longest <= max_len:
        return EncodedPair(prompt, chosen, rejected)
    if truncation == "drop":
        raise InvalidRecord(
            "too_long", "", f"prompt {len(prompt)} + reply {longest} tokens is longer than max_len {max_len}"
        )
    budget = max(max_len // 2, max_len - longest)
    prompt = prompt[-budget:]
    room = max_len - len(prompt)
    return EncodedPair(prompt, chosen[:room], rejected[:room], truncated=True)


def _side(prompt: list[int], reply: list[int]) -> EncodedExample:
    return EncodedExample(prompt + reply, [IGNORE_INDEX] * len(prompt) + list(reply))
