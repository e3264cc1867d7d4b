"""``shipyard apply -f`` of an Agent; ``shipyard agent ask/chat/list/sessions``; get and delete agents.

Embedded mode throughout (a data dir per test); the agent's model is the real inference server with
the tiny Llama, so ``ask`` and ``chat`` run the real runtime end to end over HTTP.
"""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml
from click.testing import CliRunner, Result

from shipyard.cli.main import cli
from tests.unit.inference_api.servers import StartServers


def agent_doc(name: str = "helper", **spec: object) -> dict[str, object]:
    body = {"model": {"url": "http://127.0.0.1:9/v1"}, "tools": [{"type": "calculator"}], **spec}
    return {"apiVersion": "shipyard.dev/v1alpha1", "kind": "Agent", "metadata": {"name": name}, "spec": body}


def run(data_dir: pathlib.Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])


def apply(tmp_path: pathlib.Path, doc: dict[str, object]) -> Result:
    path = tmp_path / "agent.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return run(tmp_path / "data", "apply", "-f", str(path))


def test_apply_registers_the_agent_and_get_lists_it(tmp_path: pathlib.Path) -> None:
    docs = tmp_path / "docs.jsonl"
    docs.write_text(json.dumps({"id": "d1", "text": "Shipyard runs agents."}) + "\n", encoding="utf-8")
    doc = agent_doc(
        tools=[{"type": "calculator"}, {"type": "search", "documents": str(docs), "mode": "bm25"}]
    )
    first = apply(tmp_path, doc)
    assert first.exit_code == 0, first.output
    assert "helper (created)" in first.output

    again = apply(tmp_path, agent_doc(systemPrompt="Be brief."))
    assert again.exit_code == 0 and "helper (updated)" in again.output

    listed = run(tmp_path / "data", "get", "agents")
    assert listed.exit_code == 0, listed.output
    assert (
        "helper" in listed.output
        and "http://127.0.0.1:9/v1" in listed.output
        and "calculator" in listed.output
    )

    deleted = run(tmp_path / "data", "delete", "agent", "helper")
    assert deleted.exit_code == 0 and "agent helper deleted" in deleted.output
    assert "helper" not in run(tmp_path / "data", "agent", "list").output


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"tools": [{"type": "search", "documents": "missing.jsonl"}]}, "spec.tools[0].documents"),
        ({"model": {"deployment": "tiny", "url": "http://127.0.0.1:1/v1"}}, "spec.model"),
        ({"tools": [{"type": "calculator"}, {"type": "abacus"}]}, "spec.tools[1]"),
    ],
)
def test_a_bad_manifest_names_the_field_and_registers_nothing(
    tmp_path: pathlib.Path, spec: dict[str, object], field: str
) -> None:
    result = apply(tmp_path, agent_doc(**spec))
    assert result.exit_code == 2
    assert field in result.output
    assert "helper" not in run(tmp_path / "data", "get", "agents").output


def test_ask_and_chat_run_the_agent_against_a_model_endpoint(
    tmp_path: pathlib.Path, start_servers: StartServers
) -> None:
    servers = start_servers()
    model = {"url": f"{servers.http.url}/v1", "name": "tiny"}
    assert apply(tmp_path, agent_doc(model=model, tools=[], limits={"maxTokensPerStep": 8})).exit_code == 0

    asked = run(tmp_path / "data", "agent", "ask", "Say hello.")  # the only agent: no --agent needed
    assert asked.exit_code == 0, asked.output
    assert "1 model calls" in asked.output and "completion tokens" in asked.output

    chatted = run(tmp_path / "data", "agent", "chat", "--agent", "helper", "-m", "Hi.", "-m", "Again.")
    assert chatted.exit_code == 0, chatted.output
    sessions = run(tmp_path / "data", "agent", "sessions", "--agent", "helper")
    assert sessions.exit_code == 0
    row = next(line for line in sessions.output.splitlines() if "helper" in line)
    assert row.split()[-3] == "4"  # two turns: user + assistant each

    session_id = row.split()[0]
    interactive = CliRunner().invoke(
        cli,
        ["--data-dir", str(tmp_path / "data"), "agent", "chat", "--session", session_id],
        input="Once more.\n",
    )
    assert interactive.exit_code == 0, interactive.output
    assert f"continue with: shipyard agent chat --session {session_id}" in interactive.output
    resumed = run(tmp_path / "data", "agent", "sessions")
    assert next(line for line in resumed.output.splitlines() if session_id in line).split()[-3] == "6"


def test_ask_without_an_agent_name_when_several_exist_says_which(tmp_path: pathlib.Path) -> None:
    assert apply(tmp_path, agent_doc("one")).exit_code == 0
    assert apply(tmp_path, agent_doc("two")).exit_code == 0
    result = run(tmp_path / "data", "agent", "ask", "Hi?")
    assert result.exit_code == 2
    assert "agent" in result.output and "one, two" in result.output
