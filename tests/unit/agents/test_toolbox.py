"""Building an agent's tools from its spec: each entry type, names, limits, errors naming the entry."""

from __future__ import annotations

import json
import pathlib
import sqlite3
from typing import Any

import pytest

from shipyard.agents.retrieval.collection import Collection
from shipyard.agents.toolbox import build_toolbox
from shipyard.agents.tools.base import ToolContext
from shipyard.errors import InvalidArgument, NotFound
from shipyard.resources.agent import AgentSpec
from shipyard.storage import LocalStorage, from_local_path

DOCS = [
    {
        "id": "kettle",
        "title": "Kettles",
        "text": "A kettle boils water. Electric kettles switch off at 100 C.",
    },
    {"id": "teapot", "text": "A teapot steeps tea leaves in hot water for a few minutes."},
]


def spec(*tools: dict[str, Any]) -> AgentSpec:
    return AgentSpec.model_validate({"model": {"url": "http://127.0.0.1:9/v1"}, "tools": list(tools)})


@pytest.fixture
def documents(tmp_path: pathlib.Path) -> str:
    path = tmp_path / "kitchen.jsonl"
    path.write_text("".join(json.dumps(d) + "\n" for d in DOCS))
    return from_local_path(path)


@pytest.fixture
def database(tmp_path: pathlib.Path) -> str:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (name TEXT, price REAL)")
        conn.execute("INSERT INTO items VALUES ('kettle', 20.0), ('mug', 4.5)")
    return f"sqlite:///{path}"


def test_every_entry_becomes_a_named_tool(documents: str, database: str, tmp_path: pathlib.Path) -> None:
    agent = spec(
        {"type": "calculator", "name": "calc"},
        {"type": "python", "timeout_seconds": 3, "memory_mb": 256},
        {"type": "search", "name": "kitchen", "documents": documents, "mode": "bm25"},
        {"type": "sql", "url": database, "max_rows": 1},
    )
    with build_toolbox(agent, LocalStorage()) as box:
        assert box.registry.names() == ["calc", "python", "kitchen", "sql"]
        assert box.registry.call("calc", {"expression": "2**10"}).content == "1024"
        hits = box.registry.call("kitchen", {"query": "boil water kettle"})
        assert hits.ok and "(kettle)" in hits.content.splitlines()[0]
        assert box.search_tools[0].spec.name == "kitchen"
        rows = box.registry.call("sql", {"query": "SELECT name FROM items ORDER BY price"})
        assert "mug" in rows.content and "only the first 1 rows" in rows.content
        assert box.sandboxes[0].limits.timeout_s == 3 and box.sandboxes[0].limits.memory_mb == 256


def test_search_from_a_saved_collection(tmp_path: pathlib.Path) -> None:
    from shipyard.data.document import Document

    storage = LocalStorage()
    uri = from_local_path(tmp_path / "collections" / "kitchen")
    Collection.build("kitchen", [Document(d["id"], d["text"]) for d in DOCS], encoder=None).save(storage, uri)
    with build_toolbox(spec({"type": "search", "collection": uri}), storage) as box:
        assert "(teapot)" in box.registry.call("search", {"query": "steep tea leaves"}, ToolContext()).content


def test_a_missing_collection_names_the_entry(tmp_path: pathlib.Path) -> None:
    uri = from_local_path(tmp_path / "nowhere")
    with pytest.raises(NotFound) as err:
        build_toolbox(spec({"type": "calculator"}, {"type": "search", "collection": uri}), LocalStorage())
    assert str(err.value).startswith("spec.tools[1] (search): no collection at")


def test_bad_documents_name_the_line_and_the_field(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "docs.jsonl"
    path.write_text('{"id": "a", "text": "fine"}\n{"id": "b"}\n')
    with pytest.raises(InvalidArgument) as err:
        build_toolbox(spec({"type": "search", "documents": str(path)}), LocalStorage())
    assert err.value.violations[0].field == "spec.tools[0].documents"
    assert "line 2 needs an 'id' and a string 'text'" in str(err.value)


def test_a_bad_database_url_names_the_entry(tmp_path: pathlib.Path) -> None:
    with pytest.raises(InvalidArgument) as err:
        build_toolbox(spec({"type": "calculator"}, {"type": "sql", "url": "mysql://x/y"}), LocalStorage())
    assert err.value.violations[0].field == "spec.tools[1].database_url"
    assert "unsupported database 'mysql'" in str(err.value)
