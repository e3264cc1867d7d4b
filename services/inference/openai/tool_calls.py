"""OpenAI tool calling over a model that writes Hermes-style ``<tool_call>`` blocks: prompt, grammar, parse.

* Prompt: a chat template that knows about tools gets ``tools=`` and the messages in Hugging Face's
  tool format. Otherwise (SmolLM2, plain ChatML) the tools are listed in a system block, earlier calls
  are written as ``<tool_call>{"name", "arguments"}</tool_call>`` (the Hermes / Qwen convention) and
  results as plain ``Tool result (<name>): ...`` lines in a user turn that asks for the answer. A model
  trained on no tool format (SmolLM2) copies Hermes ``<tool_response>`` blocks into its answer instead
  of answering; stated in words, it answers from the result.
* Grammar: ``tool_choice`` picks what the output may be — "required": one or more calls, a named
  function: exactly one call of it, "auto": free text (or the ``response_format``) *or* text followed by
  calls. Every call is ``{"name": <a tool>, "arguments": <its parameters schema>}``, so even a 135M model
  only produces calls that parse and fit (the engine enforces it with llguidance).
* Parse: ``ToolCallParser`` splits the text into content and calls incrementally; streaming emits its
  events as deltas and the non-streaming answer is the same parser run once, so both agree.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from shipyard.engine.structured import JSON_OPTIONS, StructuredOutput
from shipyard.errors import InvalidArgument
from shipyard_services.inference.openai.protocol import (
    ChatCompletionRequest,
    ChatMessage,
    NamedToolChoice,
    Tool,
)

__all__ = ["OPEN", "CLOSE", "ToolCallParser", "ToolCalling", "render_messages", "tool_calling"]

OPEN, CLOSE = "<tool_call>", "</tool_call>"

SYSTEM_BLOCK = """# Tools

You may call one or more functions to assist with the user query.

You are provided with function signatures within <tools></tools> XML tags:
<tools>
{tools}
</tools>

For each function call, return a json object with function name and arguments within \
<tool_call></tool_call> XML tags:
<tool_call>
{{"name": <function-name>, "arguments": <args-json-object>}}
</tool_call>"""


@dataclass(frozen=True)
class ToolCalling:
    """What a chat request's tools mean for this request: the tools in play and the output grammar."""

    tools: tuple[Tool, ...]  # empty: tools are off ("none", or none given)
    structured: StructuredOutput | None


def tool_calling(request: ChatCompletionRequest) -> ToolCalling:
    """Check ``tools``/``tool_choice`` and build the grammar; ``InvalidArgument`` naming the field."""
    tools = tuple(request.tools or ())
    choice = request.tool_choice if request.tool_choice is not None else ("auto" if tools else "none")
    if not tools:
        if choice != "none":
            raise InvalidArgument.field("tool_choice", "needs tools: the request has no tools to choose from")
        return ToolCalling((), None)
    names = [t.function.name for t in tools]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise InvalidArgument.field(f"tools[{i}].function.name", f"duplicate tool name {name!r}")
    for i, tool in enumerate(tools):
        # Compile each schema alone first, so a bad one is reported as that tool's.
        StructuredOutput.json_schema(_parameters(tool), field=f"tools[{i}].function.parameters").check()
    if choice == "none":
        return ToolCalling((), None)
    parallel = request.parallel_tool_calls is not False
    if isinstance(choice, NamedToolChoice):
        if choice.function.name not in names:
            raise InvalidArgument.field(
                "tool_choice.function.name", f"{choice.function.name!r} is not one of the tools {names}"
            )
        chosen = [t for t in tools if t.function.name == choice.function.name]
        return ToolCalling(tools, _lark(_calls_rule(chosen, repeat=False), field="tool_choice"))
    if choice == "required":
        return ToolCalling(tools, _lark(_calls_rule(tools, repeat=parallel), field="tools"))
    answer = request.response_format.structured() if request.response_format else None
    return ToolCalling(tools, _lark(_auto_rules(tools, parallel, answer), field="tools"))


def _parameters(tool: Tool) -> dict[str, Any]:
    return tool.function.parameters or {"type": "object", "properties": {}}


def _call_schema(tools: Sequence[Tool]) -> dict[str, Any]:
    """The JSON inside a ``<tool_call>``: one of the tools' names with that tool's arguments."""
    options = [
        {
            "type": "object",
            "properties": {"name": {"const": t.function.name}, "arguments": _parameters(t)},
            "required": ["name", "arguments"],
            "additionalProperties": False,
        }
        for t in tools
    ]
    schema = options[0] if len(options) == 1 else {"anyOf": options}
    return {**schema, "x-guidance": JSON_OPTIONS}


def _calls_rule(tools: Sequence[Tool], *, repeat: bool) -> str:
    more = ' ("\\n" call)*' if repeat else ""
    return f"start: call{more}\n" + _call_rules(tools)


def _call_rules(tools: Sequence[Tool]) -> str:
    return (
        'call: "<tool_call>\\n" call_json "\\n</tool_call>"\n'
        f"call_json: %json {json.dumps(_call_schema(tools))}\n"
    )


def _auto_rules(tools: Sequence[Tool], parallel: bool, answer: StructuredOutput | None) -> str:
    more = ' ("\\n" call)*' if parallel else ""
    if answer is not None:
        # An answer in the response format, or calls (no free text: the format is the answer).
        schema = json.loads(answer.spec) if answer.kind == "json_schema" else {"type": "object"}
        return (
            f"start: answer | call{more}\n"
            f"answer: %json {json.dumps({**schema, 'x-guidance': JSON_OPTIONS})}\n" + _call_rules(tools)
        )
    # Free text that never opens a call, or any text ending in the call opener (``suffix`` makes the
    # lead lazy: it stops at the first opener), then the call's JSON and any further calls. Neither may
    # contain a ``<tool_response>``: only the caller writes tool results, and small models otherwise
    # answer by inventing (or endlessly repeating) them.
    return (
        f'start: TEXT | lead call_json "\\n</tool_call>"{more}\n'
        'lead[suffix="<tool_call>\\n"]: /(?s:.*)/ & ~/(?s:.*<tool_response>.*)/\n'
        "TEXT: /(?s:.+)/ & ~/(?s:.*<tool_call>.*)/ & ~/(?s:.*<tool_response>.*)/\n" + _call_rules(tools)
    )


def _lark(grammar: str, *, field: str) -> StructuredOutput:
    return StructuredOutput("lark", grammar, field)


# -- prompt --------------------------------------------------------------------------------------------


def render_messages(
    request: ChatCompletionRequest, tools: Sequence[Tool], *, native: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """``(messages, tools)`` for the chat template: ``native`` templates take tools themselves."""
    if native:
        messages = [_native_message(i, m) for i, m in enumerate(request.messages)]
        return messages, [t.model_dump(exclude_none=True) for t in tools] or None
    messages: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool_call_id -> function name, for results that do not name theirs
    for i, m in enumerate(request.messages):
        if m.role == "tool":
            name = m.name or names.get(m.tool_call_id or "", "")
            line = f"Tool result ({name}): {m.text()}" if name else f"Tool result: {m.text()}"
            if messages and "lines" in messages[-1]:
                messages[-1]["lines"].append(line)  # consecutive results share one user turn
            else:
                messages.append({"role": "user", "lines": [line]})
        elif m.role == "assistant" and m.tool_calls:
            names.update((c.id, c.function.name) for c in m.tool_calls)
            calls = [
                f"{OPEN}\n{json.dumps({'name': c.function.name, 'arguments': _arguments(i, j, m)})}\n{CLOSE}"
                for j, c in enumerate(m.tool_calls)
            ]
            messages.append(
                {"role": "assistant", "content": "\n".join(([m.text()] if m.text() else []) + calls)}
            )
        else:
            messages.append({"role": m.role, "content": m.text()})
    for m in messages:
        if "lines" in m:  # a turn of tool results
            lines = m.pop("lines")
            ask = "Use this result" if len(lines) == 1 else "Use these results"
            m["content"] = "\n".join([*lines, f"{ask} to answer my question."])
    if tools:
        listing = "\n".join(json.dumps(t.model_dump(exclude_none=True)) for t in tools)
        block = SYSTEM_BLOCK.format(tools=listing)
        if messages and messages[0]["role"] == "system":
            messages[0]["content"] = f"{messages[0]['content']}\n\n{block}"
        else:
            messages.insert(0, {"role": "system", "content": block})
    return messages, None


def _native_message(i: int, m: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": m.text()}
    if m.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.function.name, "arguments": _arguments(i, j, m)},
            }
            for j, c in enumerate(m.tool_calls)
        ]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    return out


def _arguments(i: int, j: int, m: ChatMessage) -> Any:
    assert m.tool_calls is not None
    try:
        return json.loads(m.tool_calls[j].function.arguments)
    except json.JSONDecodeError as exc:
        raise InvalidArgument.field(
            f"messages[{i}].tool_calls[{j}].function.arguments", f"must be a JSON object as text: {exc}"
        ) from exc


# -- output --------------------------------------------------------------------------------------------


@dataclass
class ToolCallParser:
    """Splits generated text into content and ``tool_calls`` entries as it arrives.

    ``feed`` returns ``(content, calls)`` ready to send: text that might be the start of ``<tool_call>``
    and trailing whitespace are held back until it is clear what follows, a call is released whole
    once its closing tag arrives, and whitespace around calls is dropped. A block that does not
    parse stays content.
    """

    calls: list[dict[str, Any]] = field(default_factory=list)
    _buffer: str = ""
    _in_call: bool = False

    def feed(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        self._buffer += text
        content, calls = "", []
        while True:
            if self._in_call:
                end = self._buffer.find(CLOSE)
                if end < 0:
                    break
                body, self._buffer, self._in_call = (
                    self._buffer[:end],
                    self._buffer[end + len(CLOSE) :],
                    False,
                )
                call = self._call(body)
                if call is None:
                    content += f"{OPEN}{body}{CLOSE}"
                else:
                    calls.append(call)
                continue
            start = self._buffer.find(OPEN)
            if start >= 0:
                content += self._buffer[:start].rstrip()
                self._buffer, self._in_call = self._buffer[start + len(OPEN) :], True
                continue
            safe = len(self._buffer) - _partial_open(self._buffer)
            # Trailing whitespace is held back too: if a call follows, it is dropped, not sent.
            cut = len(self._buffer[:safe].rstrip())
            content, self._buffer = content + self._buffer[:cut], self._buffer[cut:]
            break
        return content, calls

    def finish(self) -> str:
        """The content still held back once generation has ended (an unfinished call is shown as text)."""
        rest = (OPEN if self._in_call else "") + self._buffer
        self._buffer, self._in_call = "", False
        return rest if rest.strip() or not self.calls else ""

    def _call(self, body: str) -> dict[str, Any] | None:
        try:
            parsed = json.loads(body)
        except json.JSONDecodeError:
            return None
        if not isinstance(parsed, dict) or not isinstance(parsed.get("name"), str):
            return None
        call = {
            "index": len(self.calls),
            "id": f"call_{uuid.uuid4().hex[:24]}",
            "type": "function",
            "function": {"name": parsed["name"], "arguments": json.dumps(parsed.get("arguments", {}))},
        }
        self.calls.append(call)
        return call


def _partial_open(text: str) -> int:
    """Length of the longest end of ``text`` that could be the start of ``<tool_call>``."""
    for n in range(min(len(OPEN) - 1, len(text)), 0, -1):
        if OPEN.startswith(text[-n:]):
            return n
    return 0
