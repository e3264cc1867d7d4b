"""Finetune record formats: the typed records a dataset row becomes, format detection, and parsing.

One raw row (a JSON object or a Parquet row) becomes one of three typed records:

- ``Conversation``: from Alpaca (``instruction``/``input``/``output``, optional ``system``; self-instruct rows
  with ``instances`` use their first instance), ShareGPT/FastChat (``conversations`` of ``{from, value}``,
  optional top-level ``system``) or OpenAI ``messages`` (``{role, content}``, content a string or a list of
  ``{type: text, text}`` parts);
- ``PlainText``: ``text``, for continued pretraining;
- ``PreferencePair``: ``chosen``/``rejected`` for DPO, either HH-RLHF strings (``"\\n\\nHuman: ...
  \\n\\nAssistant: ..."``) or message lists, with an optional ``prompt`` (a string or a message list).

A conversation is valid when it is an optional system message followed by user and assistant turns that
alternate, start with the user and end with the assistant, with no empty turn. Whitespace around each
turn is stripped (a trailing space before the end-of-turn token teaches nothing useful) and an empty
system message is dropped. Anything else raises ``InvalidRecord``, whose ``reason`` is a short stable
code the dataset report counts by, and whose field names the offending key.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shipyard.errors import FieldViolation, InvalidArgument

__all__ = [
    "Conversation",
    "DataFormat",
    "InvalidRecord",
    "Message",
    "PlainText",
    "PreferencePair",
    "UnreadableRecord",
    "detect_format",
    "parse_record",
]

ROLES = ("system", "user", "assistant")
# ShareGPT speaker names seen in the wild (FastChat, Vicuna, LLaVA exports), mapped to our roles.
_SHAREGPT_ROLES = {
    "human": "user",
    "user": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "chatgpt": "assistant",
    "bard": "assistant",
    "bing": "assistant",
    "system": "system",
}
# Alpaca exports write this placeholder for "no input".
_NO_INPUT = {"", "<noinput>", "<no input>"}
_HH_TURN = re.compile(r"\n\n(Human|Assistant): ")


class DataFormat(enum.StrEnum):
    """The record formats a finetune dataset can be declared as (``auto`` detects it from the keys)."""

    AUTO = "auto"
    ALPACA = "alpaca"
    SHAREGPT = "sharegpt"
    MESSAGES = "messages"
    TEXT = "text"
    PREFERENCE = "preference"


@dataclass(frozen=True)
class Message:
    """One turn: ``role`` is ``system``, ``user`` or ``assistant``."""

    role: str
    content: str


@dataclass(frozen=True)
class Conversation:
    """A validated chat: optional system, then alternating user/assistant turns ending with the assistant."""

    messages: tuple[Message, ...]


@dataclass(frozen=True)
class PreferencePair:
    """A DPO example: the shared ``prompt`` (ending with a user turn) and two assistant replies."""

    prompt: tuple[Message, ...]
    chosen: str
    rejected: str


@dataclass(frozen=True)
class PlainText:
    """A document for continued pretraining: every token is trained."""

    text: str


@dataclass(frozen=True)
class UnreadableRecord:
    """A row the reader could not decode (malformed JSON, bad UTF-8): kept so it is reported, not raised."""

    raw: str
    error: str


class InvalidRecord(InvalidArgument):
    """One record is unusable. ``reason`` is a stable code (``missing_field``, ``not_alternating``, ...)."""

    def __init__(self, reason: str, field: str, description: str) -> None:
        self.reason = reason
        self.field_path = field
        self.description = description
        super().__init__("invalid record", violations=[FieldViolation(field or "<record>", description)])


def detect_format(record: Mapping[str, Any]) -> DataFormat:
    """The format ``record``'s keys say it is in; ``InvalidRecord('unknown_format')`` when none fits."""
    if not isinstance(record, Mapping):
        raise InvalidRecord("not_an_object", "", f"expected a JSON object, got {_type_name(record)}")
    keys = set(record)
    if "chosen" in keys and "rejected" in keys:
        return DataFormat.PREFERENCE
    if "conversations" in keys:
        return DataFormat.SHAREGPT
    if "messages" in keys:
        return DataFormat.MESSAGES
    if "instruction" in keys and ("output" in keys or "instances" in keys):
        return DataFormat.ALPACA
    if "text" in keys:
        return DataFormat.TEXT
    raise InvalidRecord(
        "unknown_format",
        "",
        f"keys {sorted(keys)[:8]} match no format; expected instruction/output (alpaca), conversations "
        "(sharegpt), messages, text, or chosen/rejected (preference)",
    )


def parse_record(record: object, fmt: DataFormat) -> Conversation | PreferencePair | PlainText:
    """``record`` as the typed record of format ``fmt`` (``AUTO`` detects it); raises ``InvalidRecord``."""
    if isinstance(record, UnreadableRecord):
        raise InvalidRecord("malformed_json", "", record.error)
    if not isinstance(record, Mapping):
        raise InvalidRecord("not_an_object", "", f"expected a JSON object, got {_type_name(record)}")
    if fmt is DataFormat.AUTO:
        fmt = detect_format(record)
    if fmt is DataFormat.ALPACA:
        return _alpaca(record)
    if fmt is DataFormat.SHAREGPT:
        turns = _list(record, "conversations")
        system = _optional_str(record, "system")
        messages = [_sharegpt_turn(turn, f"conversations[{i}]") for i, turn in enumerate(turns)]
        return validate_conversation(([Message("system", system)] if system else []) + messages)
    if fmt is DataFormat.MESSAGES:
        return validate_conversation(_message_list(_list(record, "messages"), "messages"))
    if fmt is DataFormat.TEXT:
        text = _str(record, "text")
        if not text.strip():
            raise InvalidRecord("empty_content", "text", "is empty")
        return PlainText(text)
    if fmt is DataFormat.PREFERENCE:
        return _preference(record)
    raise InvalidArgument.field("format", f"unknown format {fmt!r}")


def validate_conversation(messages: list[Message], *, path: str = "messages") -> Conversation:
    """Check the turn structure (see the module docstring) and return the cleaned conversation."""
    cleaned = [Message(m.role, m.content.strip()) for m in messages]
    if cleaned and cleaned[0].role == "system" and not cleaned[0].content:
        cleaned = cleaned[1:]
    body = cleaned[1:] if cleaned and cleaned[0].role == "system" else cleaned
    if not body:
        raise InvalidRecord("no_assistant_turn", path, "has no user/assistant turns")
    offset = len(cleaned) - len(body)
    for i, message in enumerate(body):
        expected = "user" if i % 2 == 0 else "assistant"
        if message.role != expected:
            raise InvalidRecord(
                "not_alternating",
                f"{path}[{i + offset}]",
                f"turn {i + offset} is {message.role!r}, expected {expected!r} (turns must alternate "
                "user/assistant after an optional leading system message)",
            )
        if not message.content:
            raise InvalidRecord("empty_content", f"{path}[{i + offset}]", f"{message.role} turn is empty")
    if body[-1].role != "assistant":
        raise InvalidRecord("no_assistant_turn", path, "must end with an assistant turn")
    return Conversation(tuple(cleaned))


def _alpaca(record: Mapping[str, Any]) -> Conversation:
    instruction = _str(record, "instruction")
    source: Mapping[str, Any] = record
    prefix = ""
    if "output" not in record and "instances" in record:
        # self-instruct seed tasks: the first worked instance is the example.
        instances = _list(record, "instances")
        if not instances or not isinstance(instances[0], Mapping):
            raise InvalidRecord("missing_field", "instances[0]", "needs at least one {input, output} object")
        source, prefix = instances[0], "instances[0]."
    output = _str(source, "output", path=prefix + "output")
    # Checked here so the report names the Alpaca field, not the synthesized message.
    for path, value in (("instruction", instruction), (prefix + "output", output)):
        if not value.strip():
            raise InvalidRecord("empty_content", path, "is empty")
    extra = _optional_str(source, "input", path=prefix + "input")
    prompt = instruction.strip()
    if extra.strip() not in _NO_INPUT:
        prompt = f"{prompt}\n\n{extra.strip()}"
    system = _optional_str(record, "system")
    messages = [Message("user", prompt), Message("assistant", output)]
    return validate_conversation(([Message("system", system)] if system else []) + messages)


def _preference(record: Mapping[str, Any]) -> PreferencePair:
    prompt: list[Message] = []
    if record.get("prompt") is not None:
        raw = record["prompt"]
        if isinstance(raw, str):
            prompt = [Message("user", raw)]
        elif isinstance(raw, list):
            prompt = _message_list(raw, "prompt")
        else:
            raise InvalidRecord(
                "wrong_type", "prompt", f"must be a string or a message list, got {_type_name(raw)}"
            )
    chosen = _side(record, "chosen", prompt)
    rejected = _side(record, "rejected", prompt)
    good = validate_conversation(chosen, path="chosen").messages
    bad = validate_conversation(rejected, path="rejected").messages
    if good[:-1] != bad[:-1]:
        raise InvalidRecord(
            "prompt_mismatch", "rejected", "chosen and rejected do not share the same prompt turns"
        )
    return PreferencePair(good[:-1], good[-1].content, bad[-1].content)


def _side(record: Mapping[str, Any], key: str, prompt: list[Message]) -> list[Message]:
    """One side of a pair as a full conversation (prompt turns + the reply)."""
    value = record[key]
    if isinstance(value, list):
        return prompt + _message_list(value, key)
    if not isinstance(value, str):
        raise InvalidRecord("wrong_type", key, f"must be a string or a message list, got {_type_name(value)}")
    if prompt:
        return [*prompt, Message("assistant", value)]
    if not _HH_TURN.search(value):
        raise InvalidRecord(
            "missing_field",
            "prompt",
            f"{key} is a plain string with no 'Human:/Assistant:' turns and no prompt",
        )
    return _hh_turns(value, key)


def _hh_turns(text: str, path: str) -> list[Message]:
    """Split an HH-RLHF transcript (``\\n\\nHuman: ...\\n\\nAssistant: ...``) into messages."""
    parts = _HH_TURN.split(text)
    if parts[0].strip():
        raise InvalidRecord("wrong_type", path, "text before the first 'Human:' turn")
    speakers = {"Human": "user", "Assistant": "assistant"}
    return [Message(speakers[parts[i]], parts[i + 1]) for i in range(1, len(parts), 2)]


def _sharegpt_turn(turn: object, path: str) -> Message:
    if not isinstance(turn, Mapping):
        raise InvalidRecord(
            "wrong_type", path, f"must be an object with 'from' and 'value', got {_type_name(turn)}"
        )
    speaker = _str(turn, "from", path=f"{path}.from")
    role = _SHAREGPT_ROLES.get(speaker.lower())
    if role is None:
        raise InvalidRecord(
            "bad_role", f"{path}.from", f"unknown speaker {speaker!r}; expected human, gpt or system"
        )
    return Message(role, _str(turn, "value", path=f"{path}.value"))


def _message_list(items: list[Any], path: str) -> list[Message]:
    messages = []
    for i, item in enumerate(items):
        here = f"{path}[{i}]"
        if not isinstance(item, Mapping):
            raise InvalidRecord(
                "wrong_type", here, f"must be a {{role, content}} object, got {_type_name(item)}"
            )
        role = _str(item, "role", path=f"{here}.role")
        if role not in ROLES:
            raise InvalidRecord("bad_role", f"{here}.role", f"role {role!r} is not one of {', '.join(ROLES)}")
        messages.append(Message(role, _content(item, f"{here}.content")))
    return messages


def _content(item: Mapping[str, Any], path: str) -> str:
    """A message's text: a string, or OpenAI content parts of type ``text`` joined together."""
    if "content" not in item:
        raise InvalidRecord("missing_field", path, "is missing")
    content = item["content"]
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(
        isinstance(p, Mapping) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content
    ):
        return "".join(p["text"] for p in content)
    raise InvalidRecord("wrong_type", path, "must be a string or a list of {type: text, text} parts")


def _str(record: Mapping[str, Any], key: str, *, path: str | None = None) -> str:
    if key not in record or record[key] is None:
        raise InvalidRecord("missing_field", path or key, "is missing")
    value = record[key]
    if not isinstance(value, str):
        raise InvalidRecord("wrong_type", path or key, f"must be a string, got {_type_name(value)}")
    return value


def _optional_str(record: Mapping[str, Any], key: str, *, path: str | None = None) -> str:
    return _str(record, key, path=path) if record.get(key) is not None else ""


def _list(record: Mapping[str, Any], key: str) -> list[Any]:
    if key not in record or record[key] is None:
        raise InvalidRecord("missing_field", key, "is missing")
    value = record[key]
    if not isinstance(value, list):
        raise InvalidRecord("wrong_type", key, f"must be a list, got {_type_name(value)}")
    return value


def _type_name(value: object) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(value), type(value).__name__
    )
