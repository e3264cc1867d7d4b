"""An agent's tools, built from ``AgentSpec.tools``: a ``ToolRegistry`` and everything to close after.

Each entry becomes live tools: ``python`` a ``PythonSandbox`` with the entry's limits, ``search`` a
``SearchTool`` over a collection (loaded from a saved collection, built from an ingest Dataset
manifest, or from a JSONL file of ``{id, title?, text}`` documents, all read through ``Storage``),
``sql`` a read-only ``SqlTool``, ``mcp`` the tools of each listed server (named ``<server>_<tool>``),
``openapi`` one tool per operation. A failure names the entry (``spec.tools[2].collection``) and
closes whatever was already opened.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shipyard.agents.retrieval.collection import Collection
from shipyard.agents.retrieval.dense import Encoder
from shipyard.agents.tools.base import Tool
from shipyard.agents.tools.calculator import Calculator
from shipyard.agents.tools.mcp_tools import McpConnection, McpServerSpec
from shipyard.agents.tools.openapi import OpenApiToolset
from shipyard.agents.tools.python_sandbox import PythonSandbox, SandboxLimits
from shipyard.agents.tools.registry import ToolRegistry
from shipyard.agents.tools.search import SearchTool
from shipyard.agents.tools.sql import SqlTool
from shipyard.data.document import Document
from shipyard.errors import FieldViolation, InvalidArgument, ShipyardError
from shipyard.resources.agent import (
    AgentSpec,
    CalculatorToolSpec,
    McpToolSpec,
    OpenApiToolSpec,
    PythonToolSpec,
    SearchToolSpec,
    SqlToolSpec,
    ToolEntry,
)
from shipyard.storage import uri as uris
from shipyard.storage.base import Storage

__all__ = ["Toolbox", "build_toolbox", "load_documents"]


class Toolbox:
    """The registry the loop calls, the search tools (research mode uses the first), and what to close."""

    def __init__(self) -> None:
        self.registry = ToolRegistry()
        self.search_tools: list[SearchTool] = []
        self.sandboxes: list[PythonSandbox] = []
        self._closers: list[Callable[[], None]] = []

    def add(self, tool: Tool) -> None:
        self.registry.add(tool)
        if isinstance(tool, SearchTool):
            self.search_tools.append(tool)

    def end_session(self, session_id: str) -> None:
        """Free what a session holds (its Python interpreter)."""
        for sandbox in self.sandboxes:
            sandbox.close(session_id)

    def close(self) -> None:
        errors = []
        for close in reversed(self._closers):
            try:
                close()
            except Exception as exc:  # close the rest; report the first failure after
                errors.append(exc)
        self._closers.clear()
        if errors:
            raise errors[0]

    def __enter__(self) -> Toolbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_toolbox(
    spec: AgentSpec, storage: Storage, *, encoder: Encoder | None = None, scratch_root: str | None = None
) -> Toolbox:
    """Open every tool of ``spec``; ``encoder`` adds dense search (without it, search is BM25)."""
    box = Toolbox()
    try:
        for i, entry in enumerate(spec.tools):
            field = f"spec.tools[{i}]"
            try:
                _add_entry(box, entry, field, storage, encoder, scratch_root)
            except ShipyardError as exc:
                violations = [
                    v if v.field.startswith("spec.") else FieldViolation(f"{field}.{v.field}", v.description)
                    for v in exc.violations
                ]
                raise type(exc)(f"{field} ({entry.type}): {exc.message}", violations=violations) from exc
    except BaseException:
        with contextlib.suppress(Exception):
            box.close()
        raise
    return box


def _add_entry(
    box: Toolbox,
    entry: ToolEntry,
    field: str,
    storage: Storage,
    encoder: Encoder | None,
    scratch_root: str | None,
) -> None:
    if isinstance(entry, CalculatorToolSpec):
        box.add(_renamed(Calculator(), entry.name))
    elif isinstance(entry, PythonToolSpec):
        limits = SandboxLimits(
            timeout_s=entry.timeout_seconds,
            cpu_s=entry.cpu_seconds,
            memory_mb=entry.memory_mb,
            output_chars=entry.output_chars,
        )
        sandbox = PythonSandbox(limits, scratch_root=scratch_root)
        box._closers.append(sandbox.close_all)
        box.sandboxes.append(sandbox)
        box.add(_renamed(sandbox, entry.name))
    elif isinstance(entry, SearchToolSpec):
        collection = _collection(entry, field, storage, encoder)
        box.add(SearchTool(collection, mode=entry.mode, name=entry.name))
    elif isinstance(entry, SqlToolSpec):
        sql = SqlTool(entry.url, name=entry.name, max_rows=entry.max_rows)
        box._closers.append(sql.close)
        box.add(sql)
    elif isinstance(entry, McpToolSpec):
        for server in entry.servers:
            conn = McpConnection(
                McpServerSpec(name=server.name, command=tuple(server.command), url=server.url, env=server.env)
            )
            box._closers.append(conn.close)
            for tool in conn.tools():
                box.add(_renamed(tool, f"{server.name}_{tool.spec.name}"))
    elif isinstance(entry, OpenApiToolSpec):
        toolset = OpenApiToolset.load(
            storage,
            entry.spec,
            allowed_hosts=entry.allowed_hosts,
            base_url=entry.base_url,
            operations=entry.operations,
            timeout_s=entry.timeout_seconds,
            field=field,
        )
        box._closers.append(toolset.close)
        for tool in toolset.tools:
            box.add(tool)


def _renamed(tool: Any, name: str) -> Any:
    """``tool`` under the name the spec gives it (the instance's spec shadows the class's)."""
    if tool.spec.name != name:
        tool.spec = replace(tool.spec, name=name)
    return tool


def _collection(entry: SearchToolSpec, field: str, storage: Storage, encoder: Encoder | None) -> Collection:
    if entry.collection is not None:
        return Collection.load(storage, entry.collection, encoder=encoder)
    if entry.manifest is not None:
        return Collection.from_manifest(storage, entry.manifest, encoder=encoder)
    assert entry.documents is not None
    name = uris.basename(entry.documents, field=f"{field}.documents").rsplit(".", 1)[0] or entry.name
    docs = load_documents(storage, entry.documents, field=f"{field}.documents")
    return Collection.build(name, docs, encoder=encoder)


def load_documents(storage: Storage, uri: str, *, field: str = "documents") -> list[Document]:
    """Documents from a JSONL file of ``{"id", "title"?, "text"}`` objects."""
    docs = []
    for n, line in enumerate(storage.read_text(uri).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError as exc:
            raise InvalidArgument.field(field, f"{uri} line {n} is not JSON: {exc}") from exc
        if not isinstance(record, dict) or not isinstance(record.get("text"), str) or "id" not in record:
            raise InvalidArgument.field(field, f"{uri} line {n} needs an 'id' and a string 'text'")
        title = record.get("title")
        docs.append(Document(str(record["id"]), record["text"], {"title": title} if title else {}))
    if not docs:
        raise InvalidArgument.field(field, f"{uri} holds no documents")
    return docs
