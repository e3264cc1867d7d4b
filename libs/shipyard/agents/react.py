"""The ReAct text protocol (Lagent / LangChain style) for models without function calling.

The system prompt lists every tool (name, description, JSON schema of its arguments) and asks for::

    Thought: <reasoning>
    Action: <tool name>
    Action Input: <JSON object>

which the model ends at ``Observation:`` (a stop sequence); the loop runs the tool and adds the result
as a user message ``Observation: <result>``. The turn ends with ``Final Answer: <answer>``. Output
with none of the markers is taken as the answer (the model ignored the format but answered); output
with a ``Thought`` and no action or answer is a ``ParseFailure`` the model sees and can correct.

Sessions store messages in OpenAI's shape whatever the protocol (assistant ``tool_calls``, ``tool``
results), so ``render_messages`` turns stored history into this text form before each call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from shipyard.agents.events import ToolCall
from shipyard.agents.parsing import ParseFailure, ToolSchemas, extract_text_calls, parse_tool_call

__all__ = [
    "REACT_HINT",
    "REACT_STOP",
    "AnswerStream",
    "ReactStep",
    "observation",
    "parse_react",
    "react_system_prompt",
    "render_messages",
]

REACT_STOP = ("Observation:",)
REACT_HINT = (
    "answer in the format 'Thought: ...' then 'Action: <tool name>' and 'Action Input: <JSON object>', "
    "or 'Final Answer: <your answer>'"
)
_FINAL = re.compile(r"final\s*answer\s*:", re.IGNORECASE)
_ACTION = re.compile(r"^\s*action\s*:[ \t]*(.*)$", re.IGNORECASE | re.MULTILINE)
_INPUT = re.compile(r"action\s*input\s*:\s*(.*?)(?:\n\s*observation\s*:|\Z)", re.IGNORECASE | re.DOTALL)
_THOUGHT = re.compile(r"^\s*thought\s*:\s*", re.IGNORECASE)
_MARKER = re.compile(r"(thought|action|final\s*answer)\s*:", re.IGNORECASE)

_TEMPLATE = """{system}

You can use these tools:

{tools}

To use a tool, answer exactly in this format:

Thought: what you need to find out and why
Action: the tool's name, one of [{names}]
Action Input: the arguments as a JSON object

You will then get "Observation: <the tool's result>". Repeat Thought/Action/Action Input as needed.
When you know the answer, write:

Thought: I know the answer
Final Answer: your answer to the user"""


def react_system_prompt(system_prompt: str, tools: Sequence[Mapping[str, Any]]) -> str:
    """The system prompt for ``tools`` (entries of OpenAI's ``tools`` list, as a registry gives them)."""
    if not tools:
        return f"{system_prompt}\n\nAnswer in the format:\nFinal Answer: your answer to the user"
    blocks = []
    for tool in tools:
        fn = tool["function"]
        schema = json.dumps(fn.get("parameters", {}), ensure_ascii=False)
        blocks.append(f"- {fn['name']}: {fn.get('description', '')}\n  Arguments (JSON schema): {schema}")
    names = ", ".join(t["function"]["name"] for t in tools)
    return _TEMPLATE.format(system=system_prompt, tools="\n".join(blocks), names=names)


@dataclass(frozen=True)
class ReactStep:
    """One parsed model output: exactly one of ``call``, ``answer`` or ``failure`` is set."""

    thought: str = ""
    call: ToolCall | None = None
    answer: str | None = None
    failure: ParseFailure | None = None


def parse_react(text: str, tools: ToolSchemas) -> ReactStep:
    """Read a ReAct step; the action's input goes through ``parsing`` (JSON repair, name matching)."""
    final = _FINAL.search(text)
    action = _ACTION.search(text)
    if final is not None and (action is None or action.start() > final.start()):
        return ReactStep(thought=_thought(text[: final.start()]), answer=text[final.end() :].strip())
    if action is not None:
        thought = _thought(text[: action.start()])
        name = action.group(1).strip().strip("`*[]")
        match = _INPUT.search(text, action.end())
        raw_input = match.group(1).strip() if match else ""
        call = parse_tool_call(name, raw_input, tools, hint=REACT_HINT)
        if isinstance(call, ParseFailure):
            return ReactStep(thought=thought, failure=call)
        return ReactStep(thought=thought, call=call)
    found = extract_text_calls(text, tools, hint=REACT_HINT)  # a tool-tuned model may write JSON calls
    if found:
        first = found[0]
        if isinstance(first, ParseFailure):
            return ReactStep(failure=first)
        return ReactStep(call=first)
    if _THOUGHT.search(text) or not text.strip():
        reason = (
            "the answer had no 'Action:' and no 'Final Answer:'" if text.strip() else "the answer was empty"
        )
        return ReactStep(thought=_thought(text), failure=ParseFailure(reason, text, REACT_HINT))
    return ReactStep(answer=text.strip())


def _thought(text: str) -> str:
    return _THOUGHT.sub("", text.strip(), count=1).strip()


def observation(text: str) -> str:
    """How a tool's result is shown to the model (as a user message)."""
    return f"Observation: {text}"


def render_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI-shaped messages (tool calls, tool results) as ReAct text the model can continue."""
    out: list[dict[str, Any]] = []
    for m in messages:
        role = m.get("role")
        if role == "assistant" and m.get("tool_calls"):
            lines = [f"Thought: {m.get('content') or 'I should use a tool.'}"]
            for tc in m["tool_calls"]:
                fn = tc.get("function", {})
                lines += [f"Action: {fn.get('name', '')}", f"Action Input: {fn.get('arguments', '{}')}"]
            out.append({"role": "assistant", "content": "\n".join(lines)})
        elif role == "assistant" and m.get("content") and not _MARKER.search(str(m["content"])):
            out.append({"role": "assistant", "content": f"Final Answer: {m['content']}"})
        elif role == "tool":
            text = observation(str(m.get("content", "")))
            if out and out[-1]["role"] == "user" and out[-1].get("_observation"):
                out[-1]["content"] += "\n" + text
            else:
                out.append({"role": "user", "content": text, "_observation": True})
        else:
            out.append({k: v for k, v in m.items() if k in ("role", "content", "name")})
    for m in out:
        m.pop("_observation", None)
    return out


class AnswerStream:
    """Finds the answer in streamed ReAct text: ``feed`` returns the part of a delta that comes after
    ``Final Answer:``. The marker is searched in everything seen so far, so one split across deltas
    is still found; the ``Observation:`` stop sequence ends generation, so nothing follows the answer.
    """

    def __init__(self) -> None:
        self.text = ""
        self._answer_at: int | None = None

    def feed(self, delta: str) -> str:
        before = len(self.text)
        self.text += delta
        if self._answer_at is None:
            match = _FINAL.search(self.text)
            if match is None or _ACTION.search(self.text, 0, match.start()):
                return ""
            self._answer_at = match.end()
            before = match.end()
        if self.text[self._answer_at : before].strip() == "":
            # Still at the answer's start: drop the space after the marker.
            return self.text[before:].lstrip() if before >= self._answer_at else ""
        return self.text[before:]
