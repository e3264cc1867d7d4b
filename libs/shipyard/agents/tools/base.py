"""The tool contract: what an agent can call, how it is described to the model, and how a call runs.

A ``Tool`` has a ``ToolSpec`` (name, description, JSON-schema parameters; ``openai()`` renders it in
OpenAI's ``tools`` format) and ``run(args, ctx) -> ToolResult``. Agents never call ``Tool.run``
directly: ``call_tool`` validates the arguments against the schema first (a schema-invalid call comes
back as an error naming the argument, and the tool never runs), times the call, and turns any
exception into a ``ToolResult`` error, because a tool failure is an observation for the model, never
something that may take a server down.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, runtime_checkable

import jsonschema
from jsonschema.validators import validator_for

from shipyard.errors import InvalidArgument, ShipyardError

__all__ = ["Tool", "ToolContext", "ToolResult", "ToolSpec", "call_tool", "validate_arguments"]

_log = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what OpenAI accepts as a function name


@dataclass(frozen=True)
class ToolSpec:
    """How a tool is described to the model. ``parameters`` is a JSON schema of an object."""

    name: str
    description: str
    parameters: Mapping[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise InvalidArgument.field("tool.name", f"{self.name!r} must match {_NAME.pattern}")
        if self.parameters.get("type", "object") != "object":
            raise InvalidArgument.field(f"tools.{self.name}.parameters", "the schema's type must be object")
        try:
            validator_for(self.parameters).check_schema(self.parameters)
        except jsonschema.SchemaError as exc:
            raise InvalidArgument.field(f"tools.{self.name}.parameters", exc.message) from exc

    def openai(self) -> dict[str, Any]:
        """The entry for OpenAI's ``tools`` request field."""
        return {
            "type": "function",
            "function": {
                "name": self.name,
                "description": self.description,
                "parameters": dict(self.parameters),
            },
        }


@dataclass(frozen=True)
class ToolResult:
    """What a call produced: ``content`` is the text the model sees; ``data`` the structured value.

    ``error`` is set when the call failed (bad arguments, a raise, a timeout, a limit); the model sees it
    as the observation so it can correct itself.
    """

    content: str
    data: Any = None
    error: str | None = None
    elapsed: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None

    @classmethod
    def failure(cls, error: str, data: Any = None) -> ToolResult:
        return cls(content=f"Error: {error}", data=data, error=error)


@dataclass
class ToolContext:
    """Per-call context: which session is calling (stateful tools key their state on it)."""

    session_id: str = "default"
    metadata: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Tool(Protocol):
    """Anything with a spec and a ``run``. ``run`` may raise; ``call_tool`` turns that into an error."""

    @property
    def spec(self) -> ToolSpec: ...

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult: ...


def validate_arguments(spec: ToolSpec, args: Any) -> str | None:
    """Why ``args`` does not fit ``spec.parameters`` (naming the argument), or ``None`` if it does."""
    if not isinstance(args, Mapping):
        return f"arguments must be a JSON object, got {type(args).__name__}"
    validator = validator_for(spec.parameters)(spec.parameters)
    error = jsonschema.exceptions.best_match(validator.iter_errors(dict(args)))
    if error is None:
        return None
    if error.validator == "required" or error.validator == "additionalProperties":
        return f"{error.message} (tool {spec.name})"
    where = ".".join(str(p) for p in error.absolute_path) or "<arguments>"
    return f"argument {where!r}: {error.message}"


def call_tool(tool: Tool, args: Any, ctx: ToolContext | None = None) -> ToolResult:
    """Validate ``args`` against the tool's schema, run it, and return its result with ``elapsed`` set."""
    ctx = ctx if ctx is not None else ToolContext()
    started = time.monotonic()
    problem = validate_arguments(tool.spec, args)
    if problem is not None:
        return replace(ToolResult.failure(problem), elapsed=time.monotonic() - started)
    try:
        result = tool.run(dict(args), ctx)
    except ShipyardError as exc:
        result = ToolResult.failure(str(exc))
    except Exception as exc:  # a tool bug must come back to the model as an observation, not kill a server
        _log.warning("tool %s raised", tool.spec.name, exc_info=True)
        result = ToolResult.failure(f"{type(exc).__name__}: {exc}")
    return replace(result, elapsed=time.monotonic() - started)
