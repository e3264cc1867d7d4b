"""``shipyard get`` shows embedded-mode resources in the CRD's kubectl columns."""

from __future__ import annotations

import pathlib
from datetime import UTC, datetime

from click.testing import CliRunner

from shipyard.cli.main import cli
from shipyard.jobs.record import JobRecord
from shipyard.jobs.store import JobStore
from shipyard.lifecycle import JobState, condition_for
from shipyard.storage.local import LocalStorage
from shipyard.storage.uri import from_local_path
from shipyard.training.jobs import TrainingRunner
from shipyard.training.trainer import TrainingResult


def test_get_trainingjobs_uses_the_crd_printer_columns(tmp_path: pathlib.Path) -> None:
    root = from_local_path(tmp_path / "storage")
    storage = LocalStorage()
    now = datetime.now(UTC)
    record = JobRecord(
        name="tiny",
        uid="u",
        spec={"model": "llama-tiny", "resources": {"workers": 2}},
        labels={},
        state=JobState.SUCCEEDED,
        create_time=now,
        update_time=now,
        conditions=[condition_for(JobState.SUCCEEDED, now)],
        result=TrainingResult(
            output_model_uri="file:///m",
            steps=120,
            tokens_seen=1000,
            final_metrics={"loss": 6.1071, "lr": 1e-4},
            metrics_uri="file:///c/metrics.jsonl",
            last_checkpoint="file:///c/step-000120",
            restarts=0,
            registered="model:tiny@1",
        ),
    )
    JobStore(storage, root, TrainingRunner(storage, root)).save(record)  # type: ignore[arg-type]

    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "get", "tj"], terminal_width=200)
    assert result.exit_code == 0, result.output
    header, row = [line.split() for line in result.output.strip().splitlines()[:2]]
    assert header[:5] == ["NAME", "PHASE", "STEP", "TOTAL", "LOSS"]
    assert row[:2] == ["tiny", "Succeeded"] and "6.107" in row and "llama-tiny" in row and "file:///m" in row


def test_get_unknown_kind_lists_the_valid_ones(tmp_path: pathlib.Path) -> None:
    result = CliRunner().invoke(cli, ["--data-dir", str(tmp_path), "get", "pods"])
    assert result.exit_code == 2 and "trainingjobs" in result.output and "tj" in result.output
