"""Tool calls out of a model's output, repaired the way small models need (smolagents/Hermes style).

Small models rarely emit clean calls: single quotes, trailing commas, missing closing braces, code
fences, ``arguments`` sent as a JSON string or nested under ``parameters``/``args``, ``<tool_call>``
tags left open or missing, a tool name in the wrong case or one letter off. The JSON itself is repaired
by the ``json-repair`` library (strict ``json.loads`` first); this module adds the shape repairs and
maps names onto the real tools (case-insensitive, then ``difflib`` close matches).

What cannot be repaired becomes a ``ParseFailure`` whose ``message`` is written for the model (what
was wrong and what to answer instead): the loop shows it as an observation and lets the model retry.
Argument *values* are not checked here; ``call_tool`` validates them against the tool's schema.
"""

from __future__ import annotations

import difflib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import json_repair

from shipyard.agents.events import ToolCall

__all__ = [
    "FC_HINT",
    "ParseFailure",
    "ToolSchemas",
    "answer_text_end",
    "call_from_object",
    "extract_text_calls",
    "new_call_id",
    "parse_arguments",
    "parse_tool_call",
    "resolve_tool_name",
    "text_before_calls",
]

ToolSchemas = Mapping[str, Mapping[str, Any]]
"""Tool name -> JSON schema of its arguments (what a ``ToolRegistry`` offers the model)."""

FC_HINT = 'answer with <tool_call>{"name": "<tool>", "arguments": {...}}</tool_call>, or with plain text'
_NAME_KEYS = ("name", "tool", "tool_name", "function", "action")
_ARG_KEYS = ("arguments", "parameters", "args", "input", "tool_input", "action_input", "params", "kwargs")
_TAG_OPEN = re.compile(r"<tool_call>", re.IGNORECASE)
_TAG_CLOSE = re.compile(r"</tool_call>", re.IGNORECASE)
_FENCE = re.compile(r"```[a-zA-Z0-9_-]*\s*\n?(.*?)(?:```|$)", re.DOTALL)
_CLOSE_MATCH = 0.75


@dataclass(frozen=True)
class ParseFailure:
    """A call the model tried to make but that could not be repaired."""

    reason: str
    raw: str
    hint: str = FC_HINT

    @property
    def message(self) -> str:
        """The observation the model sees: what was wrong, and how to answer instead."""
        return f"Your tool call was not valid: {self.reason}. Please {self.hint}."


def new_call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


def resolve_tool_name(name: str, tools: ToolSchemas) -> str | None:
    """The real tool ``name`` means: exact, then case/separator-insensitive, then a close typo."""
    if name in tools:
        return name
    wanted = _normal(name)
    by_normal = {_normal(t): t for t in tools}
    if wanted in by_normal:
        return by_normal[wanted]
    close = difflib.get_close_matches(wanted, list(by_normal), n=1, cutoff=_CLOSE_MATCH)
    return by_normal[close[0]] if close else None


def _normal(name: str) -> str:
    return re.sub(r"[\s\-.]+", "_", name.strip().strip("`'\"")).lower()


def _loads(text: str) -> Any:
    """Strict JSON first (fast, exact), then ``json-repair``; ``""`` means nothing could be read."""
    try:
        return json.loads(text)
    except ValueError:
        return json_repair.loads(text)


def parse_arguments(raw: Any, schema: Mapping[str, Any] | None = None) -> dict[str, Any] | str:
    """Arguments as an object, or why they cannot be (a reason for ``ParseFailure``).

    Accepts a dict, a JSON string (repaired, possibly doubly encoded), nothing (``{}``), or a bare
    value when the tool takes exactly one required argument (``Action Input: 2+3`` for a calculator).
    Arguments nested under one wrapper key (``{"parameters": {...}}``) are unwrapped unless the
    schema has a property of that name.
    """
    value = raw
    for _ in range(3):  # a string may hold JSON that holds a string of JSON
        if not isinstance(value, str):
            break
        text = value.strip()
        if not text:
            return {}
        parsed = _loads(_strip_fence(text))
        if parsed == "" or parsed is None or parsed == text:
            return _bare_value(text, schema)
        value = parsed
    if value is None:
        return {}
    if isinstance(value, str):
        return _bare_value(value, schema)
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        value = value[0]
    if not isinstance(value, dict):
        return _bare_value(value, schema)
    properties = (schema or {}).get("properties", {})
    while len(value) == 1:
        ((key, inner),) = value.items()
        if key not in _ARG_KEYS or key in properties:
            break
        if isinstance(inner, str):
            inner = _loads(inner) if inner.strip().startswith(("{", "[")) else inner
        if not isinstance(inner, dict):
            break
        value = inner
    return dict(value)


def _bare_value(value: Any, schema: Mapping[str, Any] | None) -> dict[str, Any] | str:
    required = list((schema or {}).get("required", []))
    if len(required) == 1:
        return {required[0]: value}
    shown = value if len(str(value)) <= 80 else str(value)[:77] + "..."
    return f"the arguments must be a JSON object, got {shown!r}"


def _strip_fence(text: str) -> str:
    match = _FENCE.search(text)
    return match.group(1).strip() if match else text


def parse_tool_call(
    name: str, arguments: Any, tools: ToolSchemas, *, call_id: str | None = None, hint: str = FC_HINT
) -> ToolCall | ParseFailure:
    """One call from a name and raw arguments (an OpenAI ``tool_calls`` entry, or one found in text)."""
    raw = json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False, default=str)
    if not isinstance(name, str) or not name.strip():
        return ParseFailure("the call names no tool", raw, hint)
    real = resolve_tool_name(name, tools)
    if real is None:
        available = ", ".join(tools) or "none"
        return ParseFailure(f"there is no tool named {name!r} (the tools are: {available})", raw, hint)
    args = parse_arguments(arguments, tools[real])
    if isinstance(args, str):
        return ParseFailure(f"{args} (tool {real})", raw, hint)
    return ToolCall(id=call_id or new_call_id(), name=real, arguments=args)


def call_from_object(obj: Any, tools: ToolSchemas, *, raw: str, hint: str) -> ToolCall | ParseFailure:
    """A call from a decoded object: ``{"name", "arguments"}`` and the usual variants of it."""
    if not isinstance(obj, dict):
        return ParseFailure(f"expected a JSON object with a tool name, got {type(obj).__name__}", raw, hint)
    if isinstance(obj.get("function"), dict):  # OpenAI's {"type": "function", "function": {...}}
        obj = obj["function"]
    name = next((obj[k] for k in _NAME_KEYS if isinstance(obj.get(k), str)), None)
    if name is None:
        return ParseFailure('the call has no "name"', raw, hint)
    args: Any = next((obj[k] for k in _ARG_KEYS if k in obj), None)
    if args is None:
        # Flat form {"name": "search", "query": "x"}: everything but the name is an argument.
        args = {k: v for k, v in obj.items() if k not in _NAME_KEYS and k not in ("type", "id")}
    return parse_tool_call(name, args, tools, hint=hint)


def extract_text_calls(
    text: str, tools: ToolSchemas, *, hint: str = FC_HINT
) -> list[ToolCall | ParseFailure]:
    """Tool calls written into message text (Hermes ``<tool_call>`` tags, fenced or bare JSON).

    ``[]`` means the text is an answer, not a call. A ``<tool_call>`` tag always means a call (its
    body must parse); without tags, only text that *starts* with a JSON object naming a tool is one,
    so an answer that merely contains braces stays an answer.
    """
    if _TAG_OPEN.search(text) or _TAG_CLOSE.search(text):
        bodies = _tagged_bodies(text)
    else:
        body = _strip_fence(text.strip()) if text.lstrip().startswith("```") else text.strip()
        if not body.startswith(("{", "[")) or not any(
            f'"{k}"' in body or f"'{k}'" in body for k in _NAME_KEYS
        ):
            return []
        bodies = [body]
    calls: list[ToolCall | ParseFailure] = []
    for body in bodies:
        parsed = _loads(_strip_fence(body)) if body.strip() else ""
        if parsed == "" or parsed is None:
            calls.append(ParseFailure(f"{body.strip()[:80]!r} is not valid JSON", body, hint))
            continue
        for obj in parsed if isinstance(parsed, list) else [parsed]:
            calls.append(call_from_object(obj, tools, raw=body, hint=hint))
    return calls


def _tagged_bodies(text: str) -> list[str]:
    """Bodies between ``<tool_call>`` tags; an unclosed last tag runs to the end of the text, and a
    closing tag without an opening one (the template put the opener in the prompt) starts at 0."""
    opens = [m.end() for m in _TAG_OPEN.finditer(text)]
    if not opens:
        opens = [0]
    bodies = []
    for i, start in enumerate(opens):
        end_limit = opens[i + 1] if i + 1 < len(opens) else len(text)
        close = _TAG_CLOSE.search(text, start, end_limit)
        bodies.append(text[start : close.start() if close else end_limit].replace("<tool_call>", ""))
    return bodies


def text_before_calls(text: str) -> str:
    """What the model wrote before its first call (shown as a thought)."""
    match = _TAG_OPEN.search(text)
    return text[: match.start()].strip() if match else ""


def answer_text_end(text: str) -> int:
    """How much of streamed ``text`` may be shown as answer so far: nothing once it looks like a
    written tool call (a ``<tool_call>`` tag, or JSON/a code fence at the start), and never the
    end of the text that could be the start of a tag."""
    stripped = text.lstrip()
    if not stripped or stripped[0] in "{[`" or _TAG_OPEN.search(text):
        return 0
    tag = "<tool_call>"
    for n in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-n:]):
            return len(text) - n
    return len(text)
