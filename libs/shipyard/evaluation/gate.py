"""The deployment gate: does an evaluation's score satisfy ``metric <operator> threshold``?

A pure decision over the scores an evaluation reported (``"<task>/<metric>"`` -> value, as in
``EvaluationReport.scores()`` and the EvaluationJob status); the operator and ``shipyard apply`` act on it.
"""

from __future__ import annotations

import difflib
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from shipyard.resources.model_deployment import Gate

__all__ = ["GateDecision", "check_gate"]

_COMPARE: Mapping[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
}


@dataclass(frozen=True)
class GateDecision:
    """``passed`` and the observed value (None when the metric is missing), with a sentence for users."""

    passed: bool
    observed: float | None
    message: str


def check_gate(gate: Gate, scores: Mapping[str, float]) -> GateDecision:
    """Compare ``scores[gate.metric]`` with the threshold; a missing or NaN metric never passes."""
    where = f"EvaluationJob {gate.evaluation_job!r}"
    value = scores.get(gate.metric)
    if value is None:
        close = difflib.get_close_matches(gate.metric, list(scores), n=1, cutoff=0.5)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        available = ", ".join(sorted(scores)) or "none"
        return GateDecision(
            False,
            None,
            f"gate metric {gate.metric!r} is not in the scores of {where}{hint} (available: {available})",
        )
    if math.isnan(value):
        return GateDecision(
            False, value, f"gate metric {gate.metric!r} of {where} has no value (no scored samples)"
        )
    passed = _COMPARE[gate.operator](value, gate.threshold)
    verdict = "passed" if passed else "failed"
    return GateDecision(
        passed,
        value,
        f"gate {verdict}: {gate.metric} = {value:.4g} (needs {gate.operator} {gate.threshold:g})",
    )
