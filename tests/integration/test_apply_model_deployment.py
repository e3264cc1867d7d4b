"""``shipyard apply`` of a ModelDeployment runs a local inference server that outlives the command."""

from __future__ import annotations

import pathlib

import openai
import pytest
import yaml
from click.testing import CliRunner

from shipyard.cli.main import cli

pytestmark = pytest.mark.integration


def manifest(path: pathlib.Path, model: pathlib.Path, max_num_seqs: int) -> pathlib.Path:
    doc = {
        "apiVersion": "shipyard.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "tiny-chat"},
        "spec": {"model": str(model), "serving": {"maxNumSeqs": max_num_seqs, "maxModelLen": 256}},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


def shipyard(data_dir: pathlib.Path, *args: str) -> str:
    result = CliRunner().invoke(cli, ["--data-dir", str(data_dir), *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_apply_serves_the_model_get_shows_it_and_delete_stops_it(
    tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    from shipyard.deployments.local import LocalDeployments

    deployments = LocalDeployments(tmp_path / "data" / "deployments")
    data = tmp_path / "data"
    try:
        out = shipyard(data, "apply", "-f", str(manifest(tmp_path / "md.yaml", tiny_model_dir, 4)))
        record = deployments.get("tiny-chat")
        assert record.alive() and record.endpoint is not None and record.endpoint in out

        client = openai.OpenAI(base_url=record.endpoint, api_key="unused", max_retries=0, timeout=60)
        reply = client.chat.completions.create(
            model="tiny-chat", messages=[{"role": "user", "content": "hi"}], max_tokens=4, temperature=0
        )
        assert reply.usage is not None and reply.usage.completion_tokens > 0

        listing = shipyard(data, "get", "md")
        assert "tiny-chat" in listing and "Ready" in listing

        again = shipyard(data, "apply", "-f", str(manifest(tmp_path / "md.yaml", tiny_model_dir, 4)))
        assert "unchanged" in again and deployments.get("tiny-chat").pid == record.pid

        changed = shipyard(data, "apply", "-f", str(manifest(tmp_path / "md.yaml", tiny_model_dir, 2)))
        assert "replace" in changed and deployments.get("tiny-chat").pid != record.pid
        assert not record.alive()  # the old server is gone
    finally:
        for live in deployments.list():
            deployments.delete(live.name)
    assert deployments.list() == []
    assert "deleted" not in shipyard(data, "get", "md") and "tiny-chat" not in shipyard(data, "get", "md")


def test_a_gate_that_names_an_evaluation_that_never_ran_deploys_nothing(
    tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    doc = {
        "apiVersion": "shipyard.dev/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": "gated"},
        "spec": {
            "model": str(tiny_model_dir),
            "gate": {"evaluationJob": "nightly", "metric": "hellaswag/acc_norm", "threshold": 0.3},
        },
    }
    path = tmp_path / "gated.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "apply", "-f", str(path)])
    assert result.exit_code == 2
    message = " ".join(result.output.split())  # rich wraps long lines
    assert "spec.gate.evaluationJob" in message and "'nightly' has not run here" in message


def test_an_evaluation_then_a_gated_deployment_in_one_file(
    tiny_model_dir: pathlib.Path, tmp_path: pathlib.Path, shared_data: pathlib.Path
) -> None:
    from shipyard.deployments.local import LocalDeployments

    def chain(threshold: float) -> pathlib.Path:
        evaluation = {
            "apiVersion": "shipyard.dev/v1alpha1",
            "kind": "EvaluationJob",
            "metadata": {"name": "tiny-eval"},
            "spec": {"model": str(tiny_model_dir), "tasks": ["hellaswag"], "limit": 2, "batchSize": 4},
        }
        deployment = {
            "apiVersion": "shipyard.dev/v1alpha1",
            "kind": "ModelDeployment",
            "metadata": {"name": "tiny-gated"},
            "spec": {
                "model": str(tiny_model_dir),
                "serving": {"maxNumSeqs": 2, "maxModelLen": 256},
                "gate": {"evaluationJob": "tiny-eval", "metric": "hellaswag/acc", "threshold": threshold},
            },
        }
        path = tmp_path / f"chain-{threshold}.yaml"
        path.write_text(yaml.safe_dump_all([evaluation, deployment]))
        return path

    data = tmp_path / "data"
    env = {"SHIPYARD_EVAL_DATA_ROOT": str(shared_data / "eval"), "COLUMNS": "250"}
    blocked = CliRunner(env=env).invoke(cli, ["--data-dir", str(data), "apply", "-f", str(chain(1.01))])
    assert blocked.exit_code == 2, blocked.output
    assert "not deployed" in " ".join(blocked.output.split())
    evaluations = CliRunner(env=env).invoke(cli, ["--data-dir", str(data), "get", "evaluationjobs"]).output
    assert "tiny-eval" in evaluations and "Succeeded" in evaluations and "hellaswag/acc=" in evaluations

    deployments = LocalDeployments(data / "deployments")
    try:
        passed = CliRunner(env=env).invoke(cli, ["--data-dir", str(data), "apply", "-f", str(chain(0.0))])
        assert passed.exit_code == 0, passed.output
        assert deployments.get("tiny-gated").alive()
    finally:
        for live in deployments.list():
            deployments.delete(live.name)
