"""Record formats: detection from keys, parsing into typed records, and the reasons bad records get."""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from shipyard.finetune.formats import (
    Conversation,
    DataFormat,
    InvalidRecord,
    Message,
    PlainText,
    PreferencePair,
    UnreadableRecord,
    detect_format,
    parse_record,
)


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        ({"instruction": "a", "input": "", "output": "b"}, DataFormat.ALPACA),
        ({"instruction": "a", "instances": [{"input": "", "output": "b"}]}, DataFormat.ALPACA),
        ({"conversations": []}, DataFormat.SHAREGPT),
        ({"messages": []}, DataFormat.MESSAGES),
        ({"text": "hello"}, DataFormat.TEXT),
        ({"chosen": "x", "rejected": "y"}, DataFormat.PREFERENCE),
        ({"prompt": "p", "chosen": "x", "rejected": "y"}, DataFormat.PREFERENCE),
    ],
)
def test_format_is_detected_from_the_record_keys(record: dict[str, Any], expected: DataFormat) -> None:
    assert detect_format(record) is expected


def test_unknown_keys_are_an_unknown_format_naming_the_keys() -> None:
    with pytest.raises(InvalidRecord) as err:
        detect_format({"question": "q", "answer": "a"})
    assert err.value.reason == "unknown_format"
    assert "answer" in str(err.value) and "question" in str(err.value)


def test_alpaca_becomes_a_user_turn_with_the_input_and_an_assistant_turn() -> None:
    conv = parse_record(
        {"instruction": "Translate.", "input": "chat", "output": " cat ", "system": "Be terse."},
        DataFormat.AUTO,
    )
    assert conv == Conversation(
        (Message("system", "Be terse."), Message("user", "Translate.\n\nchat"), Message("assistant", "cat"))
    )


def test_alpaca_noinput_placeholder_is_not_shown_to_the_model() -> None:
    conv = parse_record(
        {"instruction": "Write a haiku.", "input": "<noinput>", "output": "..."}, DataFormat.ALPACA
    )
    assert isinstance(conv, Conversation)
    assert conv.messages[0] == Message("user", "Write a haiku.")


def test_self_instruct_rows_use_their_first_instance(shared_data: pathlib.Path) -> None:
    line = (shared_data / "sft/self_instruct/seed_tasks.jsonl").read_text().splitlines()[0]
    record = json.loads(line)
    conv = parse_record(record, DataFormat.AUTO)
    assert isinstance(conv, Conversation)
    assert conv.messages[0].content.startswith(record["instruction"])
    assert conv.messages[-1] == Message("assistant", record["instances"][0]["output"].strip())


def test_sharegpt_speakers_map_to_roles_and_a_top_level_system_is_kept() -> None:
    conv = parse_record(
        {
            "system": "sys",
            "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "hello"}],
        },
        DataFormat.AUTO,
    )
    assert [m.role for m in conv.messages] == ["system", "user", "assistant"]  # type: ignore[union-attr]


def test_every_record_of_the_shared_sharegpt_file_parses(shared_data: pathlib.Path) -> None:
    records = json.loads((shared_data / "sft/sharegpt_dummy/dummy_conversation.json").read_text())
    parsed = [parse_record(r, DataFormat.SHAREGPT) for r in records]
    assert len(parsed) == 500
    assert all(isinstance(p, Conversation) and p.messages[-1].role == "assistant" for p in parsed)


def test_openai_content_parts_are_joined_into_text() -> None:
    conv = parse_record(
        {
            "messages": [
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {"role": "assistant", "content": "c"},
            ]
        },
        DataFormat.AUTO,
    )
    assert conv.messages[0].content == "ab"  # type: ignore[union-attr]


def test_an_empty_system_message_is_dropped() -> None:
    conv = parse_record(
        {
            "messages": [
                {"role": "system", "content": " "},
                {"role": "user", "content": "q"},
                {"role": "assistant", "content": "a"},
            ]
        },
        DataFormat.MESSAGES,
    )
    assert [m.role for m in conv.messages] == ["user", "assistant"]  # type: ignore[union-attr]


def _messages(*turns: tuple[str, str]) -> dict[str, Any]:
    return {"messages": [{"role": r, "content": c} for r, c in turns]}


@pytest.mark.parametrize(
    ("record", "reason", "field"),
    [
        ({"instruction": "x", "input": ""}, "unknown_format", ""),
        ({"instruction": "x", "output": 3}, "wrong_type", "output"),
        ({"instruction": "x", "output": "  "}, "empty_content", "output"),
        ({"instruction": None, "output": "y"}, "missing_field", "instruction"),
        (_messages(("user", "a"), ("user", "b"), ("assistant", "c")), "not_alternating", "messages[1]"),
        (_messages(("assistant", "a"), ("user", "b"), ("assistant", "c")), "not_alternating", "messages[0]"),
        (_messages(("user", "a"), ("assistant", "b"), ("user", "c")), "no_assistant_turn", "messages"),
        (_messages(("user", "a"), ("assistant", "")), "empty_content", "messages[1]"),
        (_messages(("user", "a"), ("tool", "b")), "bad_role", "messages[1].role"),
        ({"messages": [{"role": "user"}]}, "missing_field", "messages[0].content"),
        ({"messages": "hi"}, "wrong_type", "messages"),
        ({"messages": []}, "no_assistant_turn", "messages"),
        ({"conversations": [{"from": "robot", "value": "x"}]}, "bad_role", "conversations[0].from"),
        ({"conversations": ["hi"]}, "wrong_type", "conversations[0]"),
        ({"text": ""}, "empty_content", "text"),
        ({"chosen": "just text", "rejected": "other"}, "missing_field", "prompt"),
        ({"chosen": 1, "rejected": "x"}, "wrong_type", "chosen"),
    ],
)
def test_bad_records_name_the_reason_and_the_field(record: dict[str, Any], reason: str, field: str) -> None:
    with pytest.raises(InvalidRecord) as err:
        parse_record(record, DataFormat.AUTO)
    assert (err.value.reason, err.value.field_path) == (reason, field)


def test_an_unreadable_line_is_a_malformed_json_record_and_a_list_is_not_an_object() -> None:
    with pytest.raises(InvalidRecord) as err:
        parse_record(UnreadableRecord("{oops", "line 3: malformed JSON"), DataFormat.AUTO)
    assert err.value.reason == "malformed_json" and "line 3" in str(err.value)
    with pytest.raises(InvalidRecord) as err:
        parse_record([1, 2], DataFormat.AUTO)
    assert err.value.reason == "not_an_object"


def test_a_declared_format_that_does_not_fit_reports_the_missing_field() -> None:
    with pytest.raises(InvalidRecord) as err:
        parse_record({"text": "hello"}, DataFormat.ALPACA)
    assert (err.value.reason, err.value.field_path) == ("missing_field", "instruction")


def test_hh_rlhf_strings_split_into_shared_prompt_turns_and_two_replies(shared_data: pathlib.Path) -> None:
    lines = (shared_data / "sft/hh_rlhf/harmless_base_test_500.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    pair = parse_record(record, DataFormat.AUTO)
    assert isinstance(pair, PreferencePair)
    assert pair.prompt[0] == Message("user", "what are some pranks with a pen i can do?")
    roles = [m.role for m in pair.prompt]
    assert roles == ["user", "assistant"] * (len(roles) // 2) + ["user"]
    assert record["chosen"].rstrip().endswith(pair.chosen)
    assert record["rejected"].rstrip().endswith(pair.rejected)
    assert pair.chosen != pair.rejected


def test_the_shared_hh_file_has_exactly_one_bad_pair_an_empty_reply(shared_data: pathlib.Path) -> None:
    reasons = []
    for line in (shared_data / "sft/hh_rlhf/harmless_base_test_500.jsonl").read_text().splitlines():
        try:
            parse_record(json.loads(line), DataFormat.PREFERENCE)
        except InvalidRecord as exc:
            reasons.append(exc.reason)
    assert reasons == ["empty_content"]


def test_preference_with_a_prompt_and_message_list_replies() -> None:
    pair = parse_record(
        {
            "prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}],
            "chosen": [{"role": "assistant", "content": "good"}],
            "rejected": [{"role": "assistant", "content": "bad"}],
        },
        DataFormat.AUTO,
    )
    assert pair == PreferencePair((Message("system", "s"), Message("user", "q")), "good", "bad")


def test_preference_with_a_string_prompt_and_string_replies() -> None:
    pair = parse_record({"prompt": "q", "chosen": "good", "rejected": "bad"}, DataFormat.AUTO)
    assert pair == PreferencePair((Message("user", "q"),), "good", "bad")


def test_preference_sides_with_different_prompts_are_a_prompt_mismatch() -> None:
    with pytest.raises(InvalidRecord) as err:
        parse_record(
            {"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "\n\nHuman: other\n\nAssistant: c"},
            DataFormat.AUTO,
        )
    assert err.value.reason == "prompt_mismatch"


def test_text_records_keep_their_text() -> None:
    assert parse_record({"text": "  Once upon a time"}, DataFormat.AUTO) == PlainText("  Once upon a time")
