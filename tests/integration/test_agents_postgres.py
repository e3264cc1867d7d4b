"""The session store and the SQL tool against a real PostgreSQL server started by this module."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from shipyard.agents.sessions import Message, SessionStore
from shipyard.agents.tools.base import call_tool
from shipyard.agents.tools.sql import SqlTool
from shipyard.errors import NotFound

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def postgres() -> Iterator[str]:
    """A throwaway PostgreSQL cluster on a free loopback port; yields a superuser URL to ``postgres``."""
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not bins:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql)")
    bindir = os.path.dirname(bins[-1])
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no 'postgres' user to run the server as")
    root = tempfile.mkdtemp(prefix="shipyard-pg-")
    shutil.chown(root, "postgres")
    data, port = os.path.join(root, "data"), _free_port()

    def as_postgres(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True, timeout=60
        )

    init = as_postgres(f"{bindir}/initdb", "-D", data, "-A", "trust", "-U", "postgres")
    if init.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr[-500:]}")
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off"
    start = as_postgres(
        f"{bindir}/pg_ctl", "-D", data, "-o", opts, "-w", "-t", "60", "-l", f"{root}/log", "start"
    )
    if start.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.skip(f"PostgreSQL did not start: {start.stderr[-500:]}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        as_postgres(f"{bindir}/pg_ctl", "-D", data, "-m", "immediate", "stop")
        shutil.rmtree(root, ignore_errors=True)


def test_sessions_survive_reopening_the_store_on_postgres(postgres: str) -> None:
    store = SessionStore(postgres)
    store.create_agent("pg-helper", {"model": "smollm2"})
    session = store.create_session("pg-helper", title="pg")
    calls = [{"id": "c1", "type": "function", "function": {"name": "calculator", "arguments": "{}"}}]
    store.append(
        session.id,
        Message("system", "be brief"),
        Message("user", "2+2?"),
        Message("assistant", "", tool_calls=calls, usage={"prompt_tokens": 9, "completion_tokens": 3}),
        Message("tool", "4", tool_call_id="c1", name="calculator"),
    )
    store.close()
    reopened = SessionStore(postgres)
    history = reopened.messages(session.id)
    assert [m.role for m in history] == ["system", "user", "assistant", "tool"]
    assert history[2].tool_calls == calls and history[2].usage == {"prompt_tokens": 9, "completion_tokens": 3}
    assert reopened.get_session(session.id).message_count == 4
    reopened.delete_agent("pg-helper")
    with pytest.raises(NotFound):
        reopened.get_session(session.id)
    reopened.close()


def test_sql_tool_reads_but_cannot_write_on_postgres(postgres: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(postgres)
    with admin.begin() as conn:
        conn.execute(text("CREATE TABLE IF NOT EXISTS cities (name text, population int)"))
        conn.execute(text("INSERT INTO cities VALUES ('Lyon', 522000), ('Nice', 342000), ('Lille', 236000)"))
    tool = SqlTool(postgres, max_rows=2)
    result = call_tool(tool, {"query": "SELECT name, population FROM cities ORDER BY population DESC"})
    assert result.error is None
    assert result.content.splitlines()[:4] == [
        "name | population",
        "--- | ---",
        "Lyon | 522000",
        "Nice | 342000",
    ]
    assert "only the first 2 rows" in result.content
    attempts = [
        "INSERT INTO cities VALUES ('Paris', 1)",
        "DELETE FROM cities",
        "CREATE TABLE evil (a int)",
        "SET TRANSACTION READ WRITE; INSERT INTO cities VALUES ('Paris', 1)",
        "COMMIT; SET default_transaction_read_only = off; INSERT INTO cities VALUES ('Paris', 1)",
    ]
    for query in attempts:
        refused = call_tool(tool, {"query": query})
        assert refused.error is not None and "refused" in refused.error, (query, refused.content)
    with admin.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM cities")).scalar() == 3
    tool.close()
    admin.dispose()
