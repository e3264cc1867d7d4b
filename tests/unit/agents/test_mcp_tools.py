"""MCP servers' tools appear as agent tools: a tiny MCPServer over stdio, started by the test."""

from __future__ import annotations

import pathlib
import sys
from collections.abc import Iterator

import pytest

from shipyard.agents.tools import ToolRegistry
from shipyard.agents.tools.mcp_tools import McpConnection, McpServerSpec
from shipyard.errors import InvalidArgument

SERVER = '''
from mcp.server.mcpserver import MCPServer

server = MCPServer("tiny")

@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b

@server.tool()
def refuse(reason: str) -> str:
    """Always fails."""
    raise ValueError(reason)

server.run("stdio")
'''


@pytest.fixture(scope="module")
def connection(tmp_path_factory: pytest.TempPathFactory) -> Iterator[McpConnection]:
    script = pathlib.Path(tmp_path_factory.mktemp("mcp")) / "server.py"
    script.write_text(SERVER)
    conn = McpConnection(McpServerSpec("tiny", command=[sys.executable, str(script)], timeout_s=30))
    yield conn
    conn.close()


def test_mcp_tools_are_listed_with_their_schemas(connection: McpConnection) -> None:
    registry = ToolRegistry(connection.tools())
    assert sorted(registry.names()) == ["add", "refuse"]
    add = next(t for t in registry.openai_tools() if t["function"]["name"] == "add")
    assert add["function"]["description"] == "Add two integers."
    assert set(add["function"]["parameters"]["required"]) == {"a", "b"}


def test_mcp_calls_return_results_and_errors(connection: McpConnection) -> None:
    registry = ToolRegistry(connection.tools())
    assert registry.call("add", {"a": 2, "b": 40}).content == "42"
    invalid = registry.call("add", {"a": "two", "b": 40})
    assert invalid.error is not None and "argument 'a'" in invalid.error
    failed = registry.call("refuse", {"reason": "no"})
    assert failed.error is not None and "refuse" in failed.error


def test_mcp_urls_must_be_loopback() -> None:
    with pytest.raises(InvalidArgument, match="mcp_servers.remote.url"):
        McpServerSpec("remote", url="https://example.com/mcp")
    with pytest.raises(InvalidArgument, match="exactly one of command and url"):
        McpServerSpec("none")
