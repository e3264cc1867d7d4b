"""``shipyard eval`` end to end in embedded mode: a tiny real model, a few samples, tables and a report."""

from __future__ import annotations

import json
import pathlib

import pytest
import yaml
from click.testing import CliRunner

from shipyard.cli.main import cli
from tests.unit.evaluation.tiny_hf_model import build_tiny_model

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def tiny_model(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> str:
    return str(build_tiny_model(shared_data, tmp_path_factory.mktemp("tiny-llama")))


def _eval(tmp_path: pathlib.Path, shared_data: pathlib.Path, *args: str):  # type: ignore[no-untyped-def]
    base = ["--data-dir", str(tmp_path / "data"), "eval", "--data-root", str(shared_data / "eval")]
    return CliRunner().invoke(cli, [*base, *args], catch_exceptions=False)


def test_eval_prints_scores_with_stderr_dimensions_and_writes_the_report(
    tiny_model: str, shared_data: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    out = tmp_path / "first"
    args = ["--model", tiny_model, "--tasks", "hellaswag,mmlu_anatomy,gsm8k", "--limit", "2"]
    result = _eval(
        tmp_path, shared_data, *args, "--num-fewshot", "1", "--batch-size", "4", "--output", str(out)
    )
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["config"]["limit"] == 2 and report["config"]["numFewshot"] == 1
    assert {"hellaswag/acc", "hellaswag/acc_norm", "mmlu_anatomy/acc", "gsm8k/exact_match"} <= set(
        report["scores"]
    )
    assert (out / "samples" / "gsm8k.jsonl").read_text().count("\n") == 2
    hellaswag = next(t for t in report["tasks"] if t["task"] == "hellaswag")
    row = next(line for line in result.output.splitlines() if line.lstrip("│ ").startswith("hellaswag"))
    first = next(iter(hellaswag["metrics"]))
    assert first in row and f"{hellaswag['metrics'][first]:.4f}" in row
    assert f"{hellaswag['stderr'][first]:.4f}" in row and "2" in row
    assert "By dimension" in result.output and "knowledge" in result.output and "math" in result.output

    # A second run compares against the first and draws the dimension chart; every sample is cached.
    chart = tmp_path / "dims.png"
    again = _eval(
        tmp_path, shared_data, *args, "--num-fewshot", "1", "--batch-size", "4",
        "--output", str(tmp_path / "second"), "--compare", str(out / "report.json"), "--chart", str(chart),
    )  # fmt: skip
    assert again.exit_code == 0, again.output
    assert "Evaluation comparison" in again.output and "(now)" in again.output
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    second = json.loads((tmp_path / "second" / "report.json").read_text())
    assert second["scores"] == report["scores"]
    assert all(t["cached_samples"] == 2 for t in second["tasks"] if not t["subtasks"])


def test_eval_runs_an_evaluation_job_manifest(
    tiny_model: str, shared_data: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    manifest = {
        "apiVersion": "shipyard.dev/v1alpha1",
        "kind": "EvaluationJob",
        "metadata": {"name": "tiny-mmlu"},
        "spec": {"model": tiny_model, "tasks": ["mmlu_anatomy"], "limit": 3, "batchSize": 2},
    }
    path = tmp_path / "evaluate.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = _eval(tmp_path, shared_data, "-f", str(path))
    assert result.exit_code == 0, result.output
    report = tmp_path / "data" / "storage" / "evaluations" / "tiny-mmlu" / "report.json"
    assert json.loads(report.read_text())["tasks"][0]["num_samples"] == 3
    assert "mmlu_anatomy" in result.output


@pytest.mark.parametrize(
    ("args", "field", "words"),
    [
        (["--model", "m", "--tasks", "hellaswag,mmlu_anatomyy"], "tasks", "did you mean 'mmlu_anatomy'"),
        (["--tasks", "hellaswag"], "model", "--model"),
        (["--model", "m", "--tasks", "hellaswag", "--batch-size", "0"], "batch_size", ">= 1"),
        (["--model", "m", "--tasks", "hellaswag", "--compare", "nope.json"], "", "nope.json"),
    ],
)
def test_bad_input_is_a_field_message_not_a_traceback(
    shared_data: pathlib.Path, tmp_path: pathlib.Path, args: list[str], field: str, words: str
) -> None:
    result = _eval(tmp_path, shared_data, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert field in result.output and words in result.output
