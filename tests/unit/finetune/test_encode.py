"""Tokenizing with assistant-only labels, verified token by token; text chunks; preference pairs."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from shipyard.errors import FailedPrecondition, InvalidArgument
from shipyard.finetune.encode import IGNORE_INDEX, encode_conversation, encode_text
from shipyard.finetune.formats import (
    Conversation,
    DataFormat,
    InvalidRecord,
    Message,
    PreferencePair,
    parse_record,
)
from shipyard.finetune.preference import encode_pair
from shipyard.finetune.templates import BUNDLED_TEMPLATES, ChatTemplate, resolve_template

# A user turn that mentions the assistant header and a control token, to catch span finders that search text.
CONV = Conversation(
    (
        Message("system", "You answer in one line."),
        Message("user", "Say 'assistant' and <|im_end|> please."),
        Message("assistant", "assistant <|im_end|>"),
        Message("user", "What is 2+2?"),
        Message("assistant", "It is 4."),
    )
)


def _expected_chatml_labels(tokenizer: Any, ids: list[int]) -> list[int]:
    """Labels from first principles: train from after ``<|im_start|>assistant\\n`` through ``<|im_end|>``."""
    tokens = tokenizer.convert_ids_to_tokens(ids)
    labels, in_reply, header_start = [], False, 0
    for i, token in enumerate(tokens):
        labels.append(ids[i] if in_reply else IGNORE_INDEX)
        if in_reply and token == "<|im_end|>":
            in_reply = False
        elif token == "<|im_start|>":
            header_start = i
        elif not in_reply and tokenizer.decode(ids[header_start : i + 1]) == "<|im_start|>assistant\n":
            in_reply = True
    return labels


def _trained_runs(example: Any) -> list[list[int]]:
    runs: list[list[int]] = []
    previous = IGNORE_INDEX
    for label in example.labels:
        if label != IGNORE_INDEX:
            if previous == IGNORE_INDEX:
                runs.append([])
            runs[-1].append(label)
        previous = label
    return runs


def test_smollm2_labels_are_exactly_the_assistant_replies_and_their_end_token(smollm_tokenizer: Any) -> None:
    template = resolve_template(smollm_tokenizer, None)
    example = encode_conversation(CONV, smollm_tokenizer, template, max_len=512)
    assert example.labels == _expected_chatml_labels(smollm_tokenizer, example.input_ids)
    im_end = smollm_tokenizer.convert_tokens_to_ids("<|im_end|>")
    runs = _trained_runs(example)
    assert [smollm_tokenizer.decode(r) for r in runs] == [
        "assistant <|im_end|><|im_end|>",
        "It is 4.<|im_end|>",
    ]
    # The user's typed "<|im_end|>" is text, the reply's closing one is the control token.
    assert [r[-1] for r in runs] == [im_end, im_end] and runs[0].count(im_end) == 1


@pytest.mark.parametrize(("name", "eos_text"), [("zephyr", "</s>"), ("mistral", "</s>")])
def test_named_templates_on_the_mistral_tokenizer_train_replies_up_to_eos(
    mistral_tokenizer: Any, name: str, eos_text: str
) -> None:
    conv = Conversation(
        CONV.messages[:1] + (Message("user", "Hello there"), Message("assistant", "General Kenobi"))
    )
    conv = Conversation(conv.messages + (Message("user", "And 2+2?"), Message("assistant", "Four")))
    example = encode_conversation(conv, mistral_tokenizer, BUNDLED_TEMPLATES[name], max_len=512)
    runs = _trained_runs(example)
    assert [mistral_tokenizer.decode(r).strip() for r in runs] == [
        f"General Kenobi{eos_text}",
        f"Four{eos_text}",
    ]
    assert all(r[-1] == mistral_tokenizer.eos_token_id for r in runs)
    untrained = [
        i for i, label in zip(example.input_ids, example.labels, strict=True) if label == IGNORE_INDEX
    ]
    assert "Hello there" in mistral_tokenizer.decode(untrained)
    assert "Kenobi" not in mistral_tokenizer.decode(untrained)


def test_train_on_all_trains_every_token(smollm_tokenizer: Any) -> None:
    template = BUNDLED_TEMPLATES["chatml"]
    example = encode_conversation(CONV, smollm_tokenizer, template, max_len=512, train_on="all")
    assert example.labels == example.input_ids


def test_a_too_long_conversation_is_dropped_or_truncated(smollm_tokenizer: Any) -> None:
    template = BUNDLED_TEMPLATES["chatml"]
    full = encode_conversation(CONV, smollm_tokenizer, template, max_len=512)
    with pytest.raises(InvalidRecord) as err:
        encode_conversation(CONV, smollm_tokenizer, template, max_len=len(full) - 1)
    assert err.value.reason == "too_long" and str(len(full)) in str(err.value)
    cut = encode_conversation(CONV, smollm_tokenizer, template, max_len=len(full) - 3, truncation="truncate")
    assert cut.truncated and cut.input_ids == full.input_ids[: len(full) - 3]
    assert cut.labels == full.labels[: len(full) - 3]


def test_truncating_away_every_reply_leaves_nothing_to_train(smollm_tokenizer: Any) -> None:
    with pytest.raises(InvalidRecord) as err:
        encode_conversation(
            CONV, smollm_tokenizer, BUNDLED_TEMPLATES["chatml"], max_len=8, truncation="truncate"
        )
    assert err.value.reason == "no_trainable_tokens"


def test_bad_encoding_options_name_the_option(smollm_tokenizer: Any) -> None:
    template = BUNDLED_TEMPLATES["chatml"]
    for kwargs, field in [
        ({"max_len": 1}, "max_len"),
        ({"max_len": 64, "train_on": "user"}, "train_on"),
        ({"max_len": 64, "truncation": "left"}, "truncation"),
    ]:
        with pytest.raises(InvalidArgument) as err:
            encode_conversation(CONV, smollm_tokenizer, template, **kwargs)  # type: ignore[arg-type]
        assert err.value.violations[0].field == field


def test_a_template_that_rewrites_earlier_turns_is_refused(mistral_tokenizer: Any) -> None:
    # Marks only the last message: turn 1 renders differently once turn 3 follows it.
    sneaky = ChatTemplate(
        "sneaky", "{% for m in messages %}{% if loop.last %}LAST {% endif %}{{ m['content'] }}\n{% endfor %}"
    )
    with pytest.raises(FailedPrecondition) as err:
        encode_conversation(CONV, mistral_tokenizer, sneaky, max_len=512)
    assert "sneaky" in str(err.value) and "incrementally" in str(err.value)


def test_text_is_cut_into_chunks_that_train_every_token_and_end_with_eos(mistral_tokenizer: Any) -> None:
    text = "It is a truth universally acknowledged, that a single man in possession of a good fortune. " * 5
    chunks = encode_text(text, mistral_tokenizer, max_len=16)
    ids = mistral_tokenizer(text)["input_ids"] + [mistral_tokenizer.eos_token_id]
    assert [t for c in chunks for t in c.input_ids] == ids[: sum(len(c) for c in chunks)]
    assert all(len(c) <= 16 and c.labels == c.input_ids for c in chunks)
    assert len(ids) - sum(len(c) for c in chunks) <= 1  # at most a lone trailing token is dropped


def test_a_preference_pair_shares_its_prompt_and_each_reply_ends_its_turn(
    smollm_tokenizer: Any, shared_data: pathlib.Path
) -> None:
    line = (shared_data / "sft/hh_rlhf/harmless_base_test_500.jsonl").read_text().splitlines()[1]
    pair = parse_record(json.loads(line), DataFormat.PREFERENCE)
    assert isinstance(pair, PreferencePair)
    template = resolve_template(smollm_tokenizer, None)
    encoded = encode_pair(pair, smollm_tokenizer, template, max_len=2048)
    im_end = smollm_tokenizer.convert_tokens_to_ids("<|im_end|>")
    prompt_text = smollm_tokenizer.decode(encoded.prompt_ids)
    assert prompt_text.endswith("<|im_start|>assistant\n") and pair.prompt[-1].content in prompt_text
    assert smollm_tokenizer.decode(encoded.chosen_ids) == f"{pair.chosen}<|im_end|>"
    assert smollm_tokenizer.decode(encoded.rejected_ids) == f"{pair.rejected}<|im_end|>"
    assert encoded.chosen_ids[-1] == encoded.rejected_ids[-1] == im_end
    chosen = encoded.chosen
    assert chosen.input_ids == encoded.prompt_ids + encoded.chosen_ids
    assert chosen.labels == [IGNORE_INDEX] * len(encoded.prompt_ids) + encoded.chosen_ids


def test_a_long_pair_is_dropped_or_truncated_keeping_the_end_of_the_prompt(smollm_tokenizer: Any) -> None:
    pair = PreferencePair((Message("user", "word " * 200 + "QUESTION?"),), "yes " * 50, "no")
    template = BUNDLED_TEMPLATES["chatml"]
    with pytest.raises(InvalidRecord) as err:
        encode_pair(pair, smollm_tokenizer, template, max_len=64)
    assert err.value.reason == "too_long"
    cut = encode_pair(pair, smollm_tokenizer, template, max_len=64, truncation="truncate")
    assert cut.truncated and len(cut) == 64
    assert "QUESTION?" in smollm_tokenizer.decode(cut.prompt_ids)
    assert smollm_tokenizer.decode(cut.rejected_ids) == "no<|im_end|>"
