"""Sharded execution: worker processes give exactly the single-process scores, merged in sample order."""

from __future__ import annotations

import pathlib
import threading

import pytest

from shipyard.errors import InvalidArgument
from shipyard.evaluation.execution import BackendSpec, InProcessExecutor, Shard, make_executor
from shipyard.evaluation.runner import EvaluationPlan, run_evaluation
from shipyard.evaluation.types import LoglikelihoodRequest
from shipyard.storage import LocalStorage, from_local_path
from tests.unit.evaluation.tiny_hf_model import build_tiny_model


@pytest.fixture(scope="module")
def model_dir(shared_data: pathlib.Path, tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return build_tiny_model(shared_data, tmp_path_factory.mktemp("tiny-llama"))


def test_two_worker_processes_score_exactly_like_one_process(
    shared_data: pathlib.Path, tmp_path: pathlib.Path, model_dir: pathlib.Path
) -> None:
    def plan(workers: int, root: str) -> EvaluationPlan:
        return EvaluationPlan(
            model=str(model_dir),
            tasks=("hellaswag", "mmlu_anatomy"),
            data_root=from_local_path(shared_data / "eval"),
            storage_root=from_local_path(tmp_path / root),
            limit=5,
            batch_size=2,
            workers=workers,
        )

    single = run_evaluation(plan(1, "one"), storage=LocalStorage())
    sharded = run_evaluation(plan(2, "two"), storage=LocalStorage())
    assert sharded.scores() == single.scores()
    for name in ("hellaswag", "mmlu_anatomy"):
        one, two = single.task(name), sharded.task(name)
        assert [r.sample_id for r in two.records] == [r.sample_id for r in one.records]
        assert [r.extra["logprobs"] for r in two.records] == [r.extra["logprobs"] for r in one.records]


def test_a_set_cancel_starts_no_shard(model_dir: pathlib.Path) -> None:
    backend = BackendSpec(str(model_dir)).open()
    shard = Shard("t", 0, ("t/test/0",), (LoglikelihoodRequest("a", " b"),))
    cancel = threading.Event()
    assert len(list(InProcessExecutor(backend).run([shard, shard], cancel))) == 2
    cancel.set()
    assert list(InProcessExecutor(backend).run([shard], cancel)) == []


def test_executor_settings_are_checked() -> None:
    with pytest.raises(InvalidArgument, match="workers"):
        make_executor("local", BackendSpec("x"), workers=0)
    with pytest.raises(InvalidArgument, match="executor"):
        make_executor("slurm", BackendSpec("x"))
