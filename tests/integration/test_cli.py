"""The ``shipyard`` command line as a user runs it: embedded runs, apply, jobs, errors."""

from __future__ import annotations

import pathlib

import pytest
import yaml
from click.testing import CliRunner

from shipyard.cli.main import cli
from tests.integration.ingest_fixtures import build_corpus, job

pytestmark = pytest.mark.integration


@pytest.fixture
def corpus(shared_data: pathlib.Path, tmp_path: pathlib.Path) -> pathlib.Path:
    build_corpus(shared_data, tmp_path / "in")
    return tmp_path / "in"


def _manifest(corpus: pathlib.Path, out: pathlib.Path, name: str, steps: list[dict] | None = None) -> dict:
    doc = job(str(corpus), str(out), steps=steps or [{"type": "normalize"}, {"type": "exact_dedup"}])
    data = doc.model_dump(mode="json", by_alias=True)
    data["metadata"]["name"] = name
    return data


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("ingest", "train", "apply", "jobs", "up", "config"):
        assert command in result.output


def test_ingest_run_prints_statistics_and_jobs_lists_it(corpus: pathlib.Path, tmp_path: pathlib.Path) -> None:
    spec = tmp_path / "job.yaml"
    spec.write_text(yaml.safe_dump(_manifest(corpus, tmp_path / "out", "cli-run")))
    data_dir = str(tmp_path / "data")
    result = CliRunner().invoke(
        cli, ["--data-dir", data_dir, "ingest", "run", "-f", str(spec), "--workers", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "exact_dedup" in result.output and "exact_duplicate" in result.output
    assert (tmp_path / "out" / "manifest.json").exists()
    listed = CliRunner().invoke(cli, ["--data-dir", data_dir, "jobs"])
    assert "cli-run" in listed.output and "SUCCEEDED" in listed.output


def test_apply_validates_every_document_before_running_any(
    corpus: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    good = _manifest(corpus, tmp_path / "first", "first")
    bad = _manifest(corpus, tmp_path / "second", "second")
    bad["spec"]["steps"] = [{"type": "normalise"}]
    path = tmp_path / "both.yaml"
    path.write_text(yaml.safe_dump_all([good, bad]))
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "apply", "-f", str(path)])
    assert result.exit_code == 2
    assert (
        "document 1" in result.output
        and "spec.steps[0].type" in result.output
        and "normalize" in result.output
    )
    assert not (tmp_path / "first").exists(), "nothing runs when any document is invalid"


def test_apply_runs_several_documents_in_order(corpus: pathlib.Path, tmp_path: pathlib.Path) -> None:
    docs = [_manifest(corpus, tmp_path / n, n) for n in ("one", "two")]
    path = tmp_path / "both.yaml"
    path.write_text(yaml.safe_dump_all(docs))
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path / "data"), "apply", "-f", str(path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "one" / "manifest.json").exists() and (tmp_path / "two" / "manifest.json").exists()


def test_bad_config_value_names_the_variable(tmp_path: pathlib.Path) -> None:
    result = CliRunner().invoke(cli, ["jobs"], env={"SHIPYARD_INGEST_PORT": "many"})
    assert result.exit_code == 2
    assert "grpc.ports.ingest" in result.output and "SHIPYARD_INGEST_PORT" in result.output
