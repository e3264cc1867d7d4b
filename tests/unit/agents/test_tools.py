"""The tool contract, the calculator, the registry and the SQLite SQL tool."""

from __future__ import annotations

import pathlib
import sqlite3
from typing import Any

import pytest

from shipyard.agents.tools import ToolContext, ToolRegistry, ToolResult, ToolSpec, call_tool
from shipyard.agents.tools.calculator import Calculator
from shipyard.agents.tools.sql import SqlTool
from shipyard.errors import InvalidArgument


class Boom:
    spec = ToolSpec(
        "boom", "raises", {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
    )
    runs = 0

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        Boom.runs += 1
        raise RuntimeError(f"tool bug {args['n']}")


def test_schema_invalid_arguments_are_rejected_before_the_tool_runs() -> None:
    result = call_tool(Boom(), {"n": "three"})
    assert result.error == "argument 'n': 'three' is not of type 'integer'" and Boom.runs == 0
    assert "'n' is a required property" in (call_tool(Boom(), {}).error or "") and Boom.runs == 0
    assert call_tool(Boom(), ["n"]).error == "arguments must be a JSON object, got list"


def test_a_raising_tool_becomes_an_error_observation() -> None:
    result = call_tool(Boom(), {"n": 3})
    assert result.error == "RuntimeError: tool bug 3" and result.content == "Error: RuntimeError: tool bug 3"
    assert result.elapsed >= 0 and Boom.runs == 1


def test_bad_tool_specs_name_the_field() -> None:
    with pytest.raises(InvalidArgument, match="tool.name"):
        ToolSpec("no spaces", "x")
    with pytest.raises(InvalidArgument, match="tools.t.parameters"):
        ToolSpec("t", "x", {"type": "object", "properties": {"a": {"type": "nonsense"}}})


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("2 + 3 * 4", "14"),
        ("(1 + 2) ** 10", "59049"),
        ("sqrt(16) / 8", "0.5"),
        ("7 // 2 + 7 % 2", "4"),
        ("-2**2", "-4"),
    ],
)
def test_calculator_evaluates_arithmetic(expression: str, expected: str) -> None:
    assert call_tool(Calculator(), {"expression": expression}).content == expected


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("__import__('os').system('id')", "unsupported syntax"),
        ("__import__('os')", "unknown function '__import__'"),
        ("().__class__", "unsupported syntax"),
        ("9 ** 9 ** 9", "exponent"),
        ("10 ** 5000", "would exceed 4096 bits"),
        ("factorial(100000)", "factorial takes one integer <= 1000"),
        ("1 / 0", "division by zero"),
        ("10.0 ** 400", "overflowed"),
        ("x + 1", "unknown name 'x'"),
    ],
)
def test_calculator_refuses_unsafe_or_huge_expressions(expression: str, reason: str) -> None:
    result = call_tool(Calculator(), {"expression": expression})
    assert result.error is not None and reason in result.error


def test_registry_renders_openai_tools_and_reports_unknown_tools() -> None:
    registry = ToolRegistry([Calculator(), Boom()])
    assert [t["function"]["name"] for t in registry.openai_tools()] == ["calculator", "boom"]
    assert registry.openai_tools()[0]["function"]["parameters"]["required"] == ["expression"]
    assert registry.call("calculator", {"expression": "6*7"}).content == "42"
    assert registry.call("nope", {}).error == "unknown tool 'nope'; available: calculator, boom"


@pytest.fixture
def sqlite_db(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "shop.db"
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE items (name TEXT, price REAL)")
        conn.executemany("INSERT INTO items VALUES (?, ?)", [(f"item{i}", i * 1.5) for i in range(20)])
    return path


def test_sql_tool_returns_a_capped_table(sqlite_db: pathlib.Path) -> None:
    tool = SqlTool(f"sqlite:///{sqlite_db}", max_rows=2)
    result = call_tool(tool, {"query": "SELECT name, price FROM items ORDER BY price DESC"})
    assert result.content.splitlines() == [
        "name | price",
        "--- | ---",
        "item19 | 28.5",
        "item18 | 27.0",
        "[only the first 2 rows are shown]",
    ]
    assert result.data["truncated"] is True


@pytest.mark.parametrize(
    "query",
    [
        "INSERT INTO items VALUES ('x', 1)",
        "DROP TABLE items",
        "SELECT 1; DELETE FROM items",
        "ATTACH DATABASE 'elsewhere.db' AS other",
    ],
)
def test_sql_tool_cannot_write_sqlite(sqlite_db: pathlib.Path, query: str) -> None:
    result = call_tool(SqlTool(f"sqlite:///{sqlite_db}"), {"query": query})
    assert result.error is not None and "refused" in result.error
    with sqlite3.connect(sqlite_db) as conn:
        assert conn.execute("SELECT count(*) FROM items").fetchone() == (20,)
    assert not (sqlite_db.parent / "elsewhere.db").exists()


def test_sql_tool_rejects_unsupported_urls() -> None:
    with pytest.raises(InvalidArgument, match="database_url"):
        SqlTool("mysql://localhost/db")
