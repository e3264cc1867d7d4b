"""EvaluationJobs through ``JobManager``: validation up front, progress per task, the summary, cancel."""

from __future__ import annotations

import pathlib
import time

import pytest

from shipyard.errors import InvalidArgument
from shipyard.evaluation.jobs import evaluation_job_manager
from shipyard.lifecycle import JobState
from shipyard.storage import from_local_path
from tests.unit.evaluation.tiny_hf_model import build_tiny_model


@pytest.fixture(scope="module")
def model_dir(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return build_tiny_model(shared_data, tmp_path_factory.mktemp("tiny-llama"))


def wait_terminal(manager, name: str, timeout: float = 60.0):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    for record in manager.watch(name, is_active=lambda: time.monotonic() < deadline):
        if record.state.terminal:
            return record
    pytest.fail(f"job {name} did not finish in {timeout}s")


def test_job_runs_reports_progress_and_summary(
    shared_data: pathlib.Path, tmp_path: pathlib.Path, model_dir: pathlib.Path
) -> None:
    root = from_local_path(tmp_path / "root")
    manager = evaluation_job_manager(root, data_root=from_local_path(shared_data / "eval"), recover=False)
    try:
        spec = {"model": str(model_dir), "tasks": ["hellaswag", "mmlu_anatomy"], "limit": 3, "batchSize": 2}
        manager.create("eval-tiny", spec)
        record = wait_terminal(manager, "eval-tiny")
        assert record.state is JobState.SUCCEEDED, record.message
        assert (
            record.progress is not None and record.progress.samples_done == record.progress.samples_total == 6
        )
        assert record.progress.tasks["hellaswag"].done == 3
        result = record.result
        assert result is not None and result.num_samples == 6 and result.num_failed == 0
        assert set(result.scores) >= {"hellaswag/acc", "hellaswag/acc_norm", "mmlu_anatomy/acc", "mmlu/acc"}
        assert result.report_uri.endswith("/evaluations/eval-tiny/report.json")
        assert (tmp_path / "root/evaluations/eval-tiny/report.json").is_file()
    finally:
        manager.close()


def test_bad_specs_are_rejected_before_anything_runs(tmp_path: pathlib.Path) -> None:
    manager = evaluation_job_manager(from_local_path(tmp_path), recover=False)
    try:
        with pytest.raises(InvalidArgument, match="did you mean 'gsm8k'") as err:
            manager.create("e1", {"model": "m", "tasks": ["gsm8"]})
        assert err.value.violations[0].field == "spec.tasks"
        with pytest.raises(InvalidArgument) as err:
            manager.create("e2", {"model": "m", "tasks": ["gsm8k"], "batchSize": 0})
        assert err.value.violations[0].field.startswith("spec.batchSize")
        with pytest.raises(InvalidArgument, match="modelFrom"):
            manager.create("e3", {"modelFrom": {"trainingJob": "t"}, "tasks": ["gsm8k"]})
        assert manager.list()[0] == []
    finally:
        manager.close()
