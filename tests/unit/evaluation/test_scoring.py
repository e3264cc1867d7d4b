"""Scoring backend results into records and metrics, groups and dimension summaries (no model needed).

Results are made up per test so the expected metric is known by hand; code tasks run real Python in a
subprocess through a minimal ``CodeSandbox`` (the production sandbox adds memory limits and isolation).
"""

from __future__ import annotations

import math
import pathlib
import subprocess
import sys
from collections.abc import Sequence

import pytest

from shipyard.errors import FailedPrecondition, InvalidArgument
from shipyard.evaluation.datasets import load_split
from shipyard.evaluation.prompts import SampleRequests, build_requests, flatten
from shipyard.evaluation.scoring import aggregate_group, collapse_groups, dimension_summary, score
from shipyard.evaluation.tasks import TaskRegistry
from shipyard.evaluation.types import (
    CodeSandbox,
    Dimension,
    ExecutionResult,
    ExecutionStatus,
    GenerationResult,
    LoglikelihoodResult,
)


class SubprocessSandbox:
    """Runs each program with ``python -I -c`` and a wall-clock timeout."""

    def run(
        self, programs: Sequence[str], *, timeout_s: float = 10.0, memory_mb: int = 1024
    ) -> list[ExecutionResult]:
        out = []
        for program in programs:
            try:
                proc = subprocess.run(
                    [sys.executable, "-I", "-c", program], capture_output=True, text=True, timeout=timeout_s
                )
            except subprocess.TimeoutExpired:
                out.append(ExecutionResult(ExecutionStatus.TIMEOUT))
                continue
            if proc.returncode == 0:
                out.append(ExecutionResult(ExecutionStatus.PASSED))
            else:
                out.append(ExecutionResult(ExecutionStatus.FAILED, proc.stderr.strip().splitlines()[-1]))
        return out


@pytest.fixture(scope="module")
def registry() -> TaskRegistry:
    return TaskRegistry.builtin()


def _plan(
    registry: TaskRegistry, root: pathlib.Path, name: str, n: int, **kwargs: object
) -> list[SampleRequests]:
    task = registry.get(name)
    samples = load_split(task, data_root=str(root / "eval"), limit=n).samples
    pool = (
        load_split(task, "fewshot", data_root=str(root / "eval")).samples if "fewshot" in task.splits else ()
    )
    return build_requests(task, samples, fewshot=pool, **kwargs)  # type: ignore[arg-type]


def _ll(*values: float) -> list[LoglikelihoodResult]:
    return [LoglikelihoodResult(v, False, 1) for v in values]


def test_hellaswag_acc_and_acc_norm_from_choice_loglikelihoods(
    registry: TaskRegistry, shared_data: pathlib.Path
) -> None:
    planned = _plan(registry, shared_data, "hellaswag", 2)
    # Both golds are choice 3 (sample 0) and 3 (sample 1); lengths of sample 0's endings: 37, 27, 26, 36.
    results = _ll(-10.0, -9.0, -20.0, -9.5) + _ll(-30.0, -30.0, -30.0, -1.0)
    result = score(registry.get("hellaswag"), planned, results)
    # Sample 0: raw argmax is choice 1 (wrong); per char -10/37, -9/27, -20/26, -9.5/36 -> choice 3 (right).
    assert result.metrics == {"acc_norm": 0.5 * (1 + 1), "acc": 0.5 * (0 + 1)}
    assert result.stderr["acc"] == pytest.approx(0.5)
    first = result.records[0]
    assert (
        first.prediction == "is ripping level tiles off."
        and first.target == "starts pulling up roofing on a roof."
    )
    assert first.correct is False and first.prompt == planned[0].prompt
    assert result.primary_metric == "acc_norm" and result.num_samples == 2


def test_truthfulqa_mc2_scores_the_mass_on_true_answers(
    registry: TaskRegistry, shared_data: pathlib.Path
) -> None:
    planned = _plan(registry, shared_data, "truthfulqa_mc2", 1)
    labels = planned[0].sample.doc["gold"]
    # Every answer equally likely: the score is the fraction of true answers (6 of 13).
    result = score(registry.get("truthfulqa_mc2"), planned, _ll(*[-2.0] * len(labels)))
    assert result.metrics["mc2"] == pytest.approx(sum(labels) / len(labels)) == pytest.approx(6 / 13)


def test_gsm8k_extracts_the_answer_and_reports_both_filters(
    registry: TaskRegistry, shared_data: pathlib.Path
) -> None:
    planned = _plan(registry, shared_data, "gsm8k", 3, num_fewshot=0)  # answers: 18, 3, 70000
    completions = [
        " 16 - 3 - 4 = 9 eggs, 9 * 2 = 18.\n#### 18",  # strict and flexible right
        " It takes 2 + 1 = 3 bolts",  # no "####": strict wrong, flexible right
        " The profit is $70,000.\n#### 7000",  # wrong
    ]
    results = [GenerationResult(c, "stop") for c in completions]
    result = score(registry.get("gsm8k"), planned, results)
    assert result.metrics["exact_match"] == pytest.approx(1 / 3)
    assert result.metrics["exact_match,flexible-extract"] == pytest.approx(2 / 3)
    assert [r.prediction for r in result.records] == ["18", "[invalid]", "7000"]
    assert [r.target for r in result.records] == ["18", "3", "70000"]
    assert result.records[1].extra["extracted"]["flexible-extract"] == "3"


def test_failed_requests_mark_their_sample_failed_and_the_rest_still_count(
    registry: TaskRegistry, shared_data: pathlib.Path
) -> None:
    planned = _plan(registry, shared_data, "mmlu_anatomy", 3)
    results: list[LoglikelihoodResult | None] = (
        _ll(-1, -2, -3, -4) + [None, *_ll(-1, -1, -1)] + _ll(-4, -3, -2, -1)
    )
    result = score(registry.get("mmlu_anatomy"), planned, results)
    assert (result.num_samples, result.num_failed) == (2, 1)
    assert result.records[1].failed and result.records[1].correct is None
    assert result.metrics["acc"] in (0.0, 0.5, 1.0)


def test_results_must_match_the_requests_one_to_one(
    registry: TaskRegistry, shared_data: pathlib.Path
) -> None:
    planned = _plan(registry, shared_data, "mmlu_anatomy", 2)
    with pytest.raises(InvalidArgument, match="expected 8 results"):
        score(registry.get("mmlu_anatomy"), planned, _ll(-1.0))


def test_humaneval_runs_completions_and_reports_pass_at_k(
    registry: TaskRegistry, shared_data: pathlib.Path
) -> None:
    task = registry.get("humaneval").model_copy(
        update={"generation": registry.get("humaneval").generation.model_copy(update={"repeats": 3})}
    )
    planned = build_requests(task, load_split(task, data_root=str(shared_data / "eval"), limit=1).samples)
    assert len(planned[0].requests) == 3 and [r.seed for r in planned[0].requests] == [0, 1, 2]
    good = GenerationResult(
        "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1 :])\n",
        "stop",
    )
    bad = GenerationResult("    return False\n", "stop")
    result = score(task, planned, [good, bad, bad], sandbox=SubprocessSandbox(), timeout_s=30)
    # n=3, c=1: pass@1 = 1/3.
    assert result.metrics["pass@1"] == pytest.approx(1 / 3)
    record = result.records[0]
    assert (
        record.extra["num_passed"] == 1 and record.correct is True and record.target == "has_close_elements"
    )
    assert record.extra["statuses"][1].startswith("failed: AssertionError")
    assert isinstance(SubprocessSandbox(), CodeSandbox)


def test_code_tasks_need_a_sandbox(registry: TaskRegistry, shared_data: pathlib.Path) -> None:
    planned = _plan(registry, shared_data, "humaneval", 1)
    with pytest.raises(FailedPrecondition, match="needs a sandbox"):
        score(registry.get("humaneval"), planned, [GenerationResult("    pass\n", "stop")])


def test_mt_bench_answers_wait_for_a_judge(registry: TaskRegistry, shared_data: pathlib.Path) -> None:
    planned = _plan(registry, shared_data, "mt_bench", 2)
    result = score(registry.get("mt_bench"), planned, [GenerationResult("Aloha!", "stop")] * 2)
    assert result.needs_judge and result.metrics == {}
    assert [r.prediction for r in result.records] == ["Aloha!", "Aloha!"]
    assert all(r.correct is None for r in result.records)


def test_mmlu_group_weights_subjects_by_size_and_dimensions_macro_average(
    registry: TaskRegistry, shared_data: pathlib.Path
) -> None:
    subject_results = []
    for name, n, right in (("mmlu_anatomy", 3, 3), ("mmlu_astronomy", 1, 0)):
        planned = _plan(registry, shared_data, name, n)
        results = []
        for item in planned:
            gold = item.sample.doc["gold"]
            favoured = gold if len(results) < right * 4 else (gold + 1) % 4
            results += _ll(*[0.0 if i == favoured else -5.0 for i in range(4)])
        subject_results.append(score(registry.get(name), planned, results))
    gsm = score(
        registry.get("gsm8k"),
        _plan(registry, shared_data, "gsm8k", 1, num_fewshot=0),
        [GenerationResult("#### 18", "stop")],
    )
    collapsed = collapse_groups([subject_results[0], gsm, subject_results[1]])
    assert [r.task for r in collapsed] == ["mmlu", "gsm8k"]
    assert collapsed[0].metrics["acc"] == pytest.approx(3 / 4)  # 3 of 4 questions, not mean(1.0, 0.0)
    assert collapsed[0].num_samples == 4
    unweighted = aggregate_group("mmlu", subject_results, weight_by_size=False)
    assert unweighted.metrics["acc"] == pytest.approx(0.5)
    summary = dimension_summary(collapsed)
    assert summary == {
        Dimension.KNOWLEDGE: pytest.approx(0.75),
        Dimension.MATH: 1.0,
        Dimension.REASONING: 1.0,
    }
    assert math.isnan(gsm.stderr["exact_match"])  # one sample: no standard error
    assert len(flatten(_plan(registry, shared_data, "mmlu_anatomy", 2))) == 8
