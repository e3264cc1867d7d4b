"""A full run of every benchmark's first samples with a real pretrained model (SmolLM2-135M-Instruct)."""

from __future__ import annotations

import dataclasses
import json
import pathlib
from collections.abc import Iterator

import pytest

from shipyard.evaluation.backends import SMOLLM2, open_backend
from shipyard.evaluation.runner import EvaluationPlan, run_evaluation
from shipyard.evaluation.types import ModelBackend
from shipyard.storage import LocalStorage, from_local_path

pytestmark = [pytest.mark.slow, pytest.mark.integration]

CMMLU_DATA = pathlib.Path(__file__).resolve().parents[1] / "unit/evaluation/data"


@pytest.fixture(scope="session")
def smollm2() -> Iterator[ModelBackend]:
    yield open_backend(SMOLLM2, batch_size=8)


def plan(data: pathlib.Path, root: pathlib.Path, tasks: tuple[str, ...], limit: int) -> EvaluationPlan:
    return EvaluationPlan(
        model=SMOLLM2,
        tasks=tasks,
        data_root=from_local_path(data),
        storage_root=from_local_path(root),
        output_uri=from_local_path(root / "report"),
        limit=limit,
        batch_size=8,
    )


def test_multiple_choice_benchmarks(
    smollm2: ModelBackend, shared_data: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    mmlu = tuple(
        f"mmlu_{p.name.removesuffix('_test.csv')}" for p in (shared_data / "eval/mmlu/test").iterdir()
    )
    tasks = ("hellaswag", "truthfulqa_mc1", "truthfulqa_mc2", *sorted(mmlu))
    report = run_evaluation(
        plan(shared_data / "eval", tmp_path, tasks, 3), storage=LocalStorage(), backend=smollm2
    )
    assert report.num_failed == 0
    for name in (*tasks, "mmlu"):
        task = report.task(name)
        assert task.num_samples == (3 * len(mmlu) if name == "mmlu" else 3)
        assert 0.0 <= task.metrics[task.primary_metric] <= 1.0
    assert set(report.dimensions) == {"reasoning", "language", "knowledge", "safety"}
    # The bundled CMMLU-style slice has two dev questions, so two shots instead of the task's five.
    cmmlu = run_evaluation(
        dataclasses.replace(plan(CMMLU_DATA, tmp_path / "c", ("cmmlu_chinese_history",), 5), num_fewshot=2),
        storage=LocalStorage(),
        backend=smollm2,
    )
    assert cmmlu.task("cmmlu_chinese_history").num_samples >= 1


def test_generation_benchmarks(
    smollm2: ModelBackend, shared_data: pathlib.Path, tmp_path: pathlib.Path
) -> None:
    report = run_evaluation(
        plan(shared_data / "eval", tmp_path, ("gsm8k", "gsm8k_cot", "humaneval", "mt_bench"), 2),
        storage=LocalStorage(),
        backend=smollm2,
    )
    assert report.num_failed == 0
    for name in ("gsm8k", "gsm8k_cot"):
        assert report.task(name).num_samples == 2 and report.task(name).stderr
    assert report.task("humaneval").metrics["pass@1"] in (0.0, 0.5, 1.0)
    mt = report.task("mt_bench")
    assert mt.needs_judge and mt.num_samples == 2  # answers only, no judge given
    answers = [
        json.loads(line) for line in (tmp_path / "report/samples/mt_bench.jsonl").read_text().splitlines()
    ]
    assert all(a["prediction"].strip() for a in answers)
    programs = [
        json.loads(line) for line in (tmp_path / "report/samples/humaneval.jsonl").read_text().splitlines()
    ]
    assert all(p["statuses"] for p in programs)  # the sandbox ran every completion
