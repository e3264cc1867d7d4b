"""The tools agents call: the contract (``base``), the built-in tools, MCP tools, and a registry."""

from shipyard.agents.tools.base import Tool, ToolContext, ToolResult, ToolSpec, call_tool, validate_arguments
from shipyard.agents.tools.registry import ToolRegistry

__all__ = ["Tool", "ToolContext", "ToolRegistry", "ToolResult", "ToolSpec", "call_tool", "validate_arguments"]
