"""The tools of one agent by name: what goes to the model (``openai_tools``) and how a call is routed."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from shipyard.agents.tools.base import Tool, ToolContext, ToolResult, call_tool
from shipyard.errors import AlreadyExists

__all__ = ["ToolRegistry"]


class ToolRegistry:
    """Tools keyed by their spec name; calling an unknown name is a ``ToolResult`` error for the model."""

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            self.add(tool)

    def add(self, tool: Tool) -> None:
        if tool.spec.name in self._tools:
            raise AlreadyExists(f"two tools are named {tool.spec.name!r}")
        self._tools[tool.spec.name] = tool

    def __contains__(self, name: str) -> bool:
        return name in self._tools

    def __len__(self) -> int:
        return len(self._tools)

    def names(self) -> list[str]:
        return list(self._tools)

    def openai_tools(self) -> list[dict[str, Any]]:
        """The ``tools`` field of an OpenAI chat request."""
        return [t.spec.openai() for t in self._tools.values()]

    def call(self, name: str, args: Any, ctx: ToolContext | None = None) -> ToolResult:
        tool = self._tools.get(name)
        if tool is None:
            return ToolResult.failure(f"unknown tool {name!r}; available: {', '.join(self._tools) or 'none'}")
        return call_tool(tool, args, ctx)
