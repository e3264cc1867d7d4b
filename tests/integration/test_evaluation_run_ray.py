"""Evaluation shards on Ray actors (one model per actor) score exactly like one process."""

from __future__ import annotations

import pathlib

import pytest

from shipyard.evaluation.runner import EvaluationPlan, run_evaluation
from shipyard.storage import LocalStorage, from_local_path
from tests.unit.evaluation.tiny_hf_model import build_tiny_model

pytestmark = [pytest.mark.ray, pytest.mark.integration]


def test_ray_workers_score_exactly_like_one_process(
    ray_cluster: None, shared_data: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    model = build_tiny_model(shared_data, tmp_path / "model")

    def plan(executor: str, workers: int, root: str) -> EvaluationPlan:
        return EvaluationPlan(
            model=str(model),
            tasks=("hellaswag", "truthfulqa_mc2"),
            data_root=from_local_path(shared_data / "eval"),
            storage_root=from_local_path(tmp_path / root),
            limit=4,
            batch_size=2,
            executor=executor,  # type: ignore[arg-type]
            workers=workers,
        )

    single = run_evaluation(plan("local", 1, "one"), storage=LocalStorage())
    on_ray = run_evaluation(plan("ray", 2, "ray"), storage=LocalStorage())
    assert on_ray.scores() == single.scores()
    assert [r.sample_id for r in on_ray.task("hellaswag").records] == [
        f"hellaswag/test/{i}" for i in range(4)
    ]
