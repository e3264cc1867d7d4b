"""The deployment gate: pass, fail, and a missing metric that names the ones available."""

from __future__ import annotations

import math

from shipyard.evaluation.gate import check_gate
from shipyard.resources.model_deployment import Gate

SCORES = {"gsm8k/exact_match": 0.42, "hellaswag/acc_norm": 0.61}


def gate(metric: str, threshold: float, op: str = ">=") -> Gate:
    return Gate(evaluation_job="eval-1", metric=metric, threshold=threshold, operator=op)  # type: ignore[arg-type]


def test_threshold_comparisons() -> None:
    assert check_gate(gate("gsm8k/exact_match", 0.4), SCORES).passed
    decision = check_gate(gate("gsm8k/exact_match", 0.5), SCORES)
    assert not decision.passed and decision.observed == 0.42
    assert "gate failed" in decision.message and ">= 0.5" in decision.message
    assert check_gate(gate("gsm8k/exact_match", 0.42, ">="), SCORES).passed
    assert not check_gate(gate("gsm8k/exact_match", 0.42, ">"), SCORES).passed
    assert check_gate(gate("gsm8k/exact_match", 0.5, "<"), SCORES).passed


def test_missing_metric_names_the_closest_and_the_available_ones() -> None:
    decision = check_gate(gate("gsm8k/accuracy", 0.1), SCORES)
    assert not decision.passed and decision.observed is None
    assert "'gsm8k/accuracy'" in decision.message and "eval-1" in decision.message
    assert "did you mean 'gsm8k/exact_match'" in decision.message
    assert "hellaswag/acc_norm" in decision.message


def test_nan_score_never_passes() -> None:
    decision = check_gate(gate("x/acc", 0.0), {"x/acc": math.nan})
    assert not decision.passed and "no value" in decision.message
