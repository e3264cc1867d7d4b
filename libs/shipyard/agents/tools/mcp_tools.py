"""Tools served by MCP servers: each server an agent spec lists is connected once, its tools become ``Tool``s.

A server is a stdio command (started as a subprocess) or a Streamable HTTP URL (loopback only: agents
must not reach arbitrary hosts through an MCP URL). The ``mcp`` client is asyncio/anyio code whose
context must be entered and left by the same task, so each ``McpConnection`` runs one owner task on a
private event loop thread: it opens the client, serves calls from a queue, and closes it on ``close()``.
Our tools are synchronous; a call blocks until the server answers or ``timeout_s`` passes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mcp import Client
from mcp.client.stdio import StdioServerParameters

from shipyard.agents.tools.base import ToolContext, ToolResult, ToolSpec
from shipyard.errors import InvalidArgument, Unavailable

__all__ = ["McpConnection", "McpServerSpec", "McpTool"]

_log = logging.getLogger(__name__)
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dataclass(frozen=True)
class McpServerSpec:
    """One MCP server of an agent spec: ``command`` (argv, stdio) or ``url`` (Streamable HTTP)."""

    name: str
    command: Sequence[str] = ()
    url: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if bool(self.command) == bool(self.url):
            raise InvalidArgument.field(f"mcp_servers.{self.name}", "set exactly one of command and url")
        if self.url is not None:
            host = urlsplit(self.url).hostname
            if urlsplit(self.url).scheme not in ("http", "https") or host not in _LOOPBACK:
                raise InvalidArgument.field(
                    f"mcp_servers.{self.name}.url", f"must be an http(s) URL on loopback, got {self.url!r}"
                )


class McpConnection:
    """A live connection to one MCP server; ``tools()`` are bound to it. Close it when the agent ends."""

    def __init__(self, spec: McpServerSpec) -> None:
        self.spec = spec
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name=f"mcp-{spec.name}", daemon=True)
        self._thread.start()
        self._queue: asyncio.Queue[tuple[str, dict[str, Any], concurrent.futures.Future[Any]] | None]
        self._ready: concurrent.futures.Future[list[Any]] = concurrent.futures.Future()
        self._done = asyncio.run_coroutine_threadsafe(self._owner(), self._loop)
        try:
            self._listed = self._ready.result(timeout=spec.timeout_s)
        except Exception as exc:
            self.close()
            raise Unavailable(f"MCP server {spec.name!r} did not start: {exc}") from exc

    async def _owner(self) -> None:
        self._queue = asyncio.Queue()
        if self.spec.command:
            server: Any = StdioServerParameters(
                command=self.spec.command[0], args=list(self.spec.command[1:]), env=self.spec.env or None
            )
        else:
            server = self.spec.url
        try:
            async with Client(server, read_timeout_seconds=self.spec.timeout_s) as client:
                self._ready.set_result((await client.list_tools()).tools)
                while (item := await self._queue.get()) is not None:
                    name, args, reply = item
                    try:
                        reply.set_result(await client.call_tool(name, args))
                    except Exception as exc:  # handed to the waiting caller, who turns it into a ToolResult
                        reply.set_exception(exc)
        except Exception as exc:
            if not self._ready.done():
                self._ready.set_exception(exc)
            raise

    def tools(self) -> list[McpTool]:
        return [McpTool(self, t.name, t.description or "", t.input_schema) for t in self._listed]

    def call(self, name: str, args: dict[str, Any]) -> Any:
        reply: concurrent.futures.Future[Any] = concurrent.futures.Future()
        if self._done.done():
            raise Unavailable(f"MCP server {self.spec.name!r} is not connected")
        self._loop.call_soon_threadsafe(self._queue.put_nowait, (name, args, reply))
        return reply.result(timeout=self.spec.timeout_s)

    def close(self) -> None:
        if hasattr(self, "_queue") and not self._done.done():
            self._loop.call_soon_threadsafe(self._queue.put_nowait, None)
            try:
                self._done.result(timeout=10)
            except Exception as exc:  # a server that died already is closed either way
                _log.debug("MCP server %s ended with %r", self.spec.name, exc)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)


class McpTool:
    """One tool of an MCP server, called over its connection."""

    def __init__(
        self, connection: McpConnection, name: str, description: str, schema: dict[str, Any]
    ) -> None:
        self.connection = connection
        self.remote_name = name
        self.spec = ToolSpec(name=name, description=description, parameters=schema)

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        try:
            result = self.connection.call(self.remote_name, args)
        except TimeoutError:
            return ToolResult.failure(f"MCP server {self.connection.spec.name!r} did not answer in time")
        text = "\n".join(getattr(block, "text", f"[{block.type} content]") for block in result.content)
        if result.is_error:
            return ToolResult.failure(
                text or "the MCP tool reported an error", data=result.structured_content
            )
        return ToolResult(content=text, data=result.structured_content)
