"""The SQL tool: read-only queries over a database the user names by URL, through SQLAlchemy.

Read-only is enforced by the connection, never by parsing the query:

- SQLite is opened as ``file:<path>?mode=ro`` (SQLite's read-only open flag) with the limit on attached
  databases set to 0 (``ATTACH`` would open another file read-write), and the driver runs one
  statement per call;
- PostgreSQL connections start with ``default_transaction_read_only=on``, and every query runs in a
  transaction opened ``READ ONLY`` and rolled back; the query goes over the extended protocol (it has
  bound parameters), which refuses several statements in one string, so a query cannot ``COMMIT`` and
  switch modes.

Rows are capped (``max_rows``; the result says when it was cut) and rendered as a small text table.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import NullPool

from shipyard.agents.tools.base import ToolContext, ToolResult, ToolSpec
from shipyard.errors import InvalidArgument

__all__ = ["SqlTool", "format_table", "read_only_engine"]

_CELL_CHARS = 80


def read_only_engine(url: str, *, timeout_s: float = 10.0) -> Engine:
    """An engine on ``url`` whose connections cannot write (SQLite or PostgreSQL)."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise InvalidArgument.field("database_url", f"not a database URL: {exc}") from exc
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if not parsed.database or parsed.database == ":memory:":
            raise InvalidArgument.field("database_url", "SQLite needs a database file")
        ro = URL.create("sqlite", database=f"file:{parsed.database}?mode=ro", query={"uri": "true"})
        # NullPool: nothing a query sets (pragmas, temp tables) outlives its call.
        engine = create_engine(ro, connect_args={"timeout": timeout_s}, poolclass=NullPool)
        event.listen(engine, "connect", _no_attach)
        return engine
    if backend == "postgresql":
        if parsed.get_driver_name() != "psycopg":
            parsed = parsed.set(drivername="postgresql+psycopg")
        options = f"-c default_transaction_read_only=on -c statement_timeout={int(timeout_s * 1000)}"
        engine = create_engine(
            parsed, connect_args={"options": options, "connect_timeout": max(1, int(timeout_s))}
        )
        return engine
    raise InvalidArgument.field("database_url", f"unsupported database {backend!r}; use sqlite or postgresql")


def _no_attach(dbapi_conn: Any, _record: Any) -> None:
    dbapi_conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A plain text table (``|``-separated, like Markdown) with long cells cut."""

    def cell(value: Any) -> str:
        s = "NULL" if value is None else str(value).replace("\n", " ")
        return s if len(s) <= _CELL_CHARS else s[: _CELL_CHARS - 1] + "…"

    lines = [" | ".join(columns), " | ".join("---" for _ in columns)]
    lines += [" | ".join(cell(v) for v in row) for row in rows]
    return "\n".join(lines)


class SqlTool:
    """``sql``: run one read-only query on a fixed database."""

    def __init__(
        self, database_url: str, *, name: str = "sql", max_rows: int = 50, description: str = ""
    ) -> None:
        if max_rows < 1:
            raise InvalidArgument.field("max_rows", f"must be >= 1, got {max_rows}")
        self.engine = read_only_engine(database_url)
        self.max_rows = max_rows
        self.spec = ToolSpec(
            name=name,
            description=description
            or f"Run one read-only SQL query ({self.engine.dialect.name}) and get at most {max_rows} rows.",
            parameters={
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1, "description": "One SQL statement."}
                },
                "required": ["query"],
                "additionalProperties": False,
            },
        )

    def run(self, args: dict[str, Any], ctx: ToolContext) -> ToolResult:
        postgres = self.engine.dialect.name == "postgresql"
        try:
            with self.engine.connect() as conn:
                raw = conn.connection.dbapi_connection
                assert raw is not None
                cursor = raw.cursor()
                try:
                    if postgres:
                        # Opens the transaction read-only; prepare=True sends the query over the extended
                        # protocol, which rejects a string holding several statements.
                        cursor.execute("SET TRANSACTION READ ONLY")
                        cursor.execute(args["query"], prepare=True)
                    else:
                        cursor.execute(args["query"])
                    if cursor.description is None:
                        return ToolResult(content="(the statement returned no rows)", data={"rows": []})
                    columns = [d[0] for d in cursor.description]
                    rows = [tuple(r) for r in cursor.fetchmany(self.max_rows + 1)]
                finally:
                    cursor.close()
                    raw.rollback()
        except Exception as exc:  # the DB-API's errors (sqlite3.Error, psycopg.Error) share no base class
            reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            return ToolResult.failure(f"the database refused the query: {reason}")
        cut = len(rows) > self.max_rows
        rows = rows[: self.max_rows]
        content = format_table(columns, rows)
        if cut:
            content += f"\n[only the first {self.max_rows} rows are shown]"
        return ToolResult(content=content, data={"columns": columns, "rows": rows, "truncated": cut})

    def close(self) -> None:
        self.engine.dispose()
