"""Metric functions: pure numbers in, numbers out, each matching lm-evaluation-harness's definition.

Per-sample: ``mc_accuracy`` (acc and length-normalized acc_norm), ``mc2_true_mass``, ``exact_match``
with lm-eval's normalizations, ``extract_answer`` (regex filters), ``pass_at_k`` (Chen et al., 2021).
Aggregates: ``mean_and_stderr`` (sample standard deviation / sqrt(n), as lm-eval's ``mean_stderr``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

import numpy as np

__all__ = [
    "exact_match",
    "extract_answer",
    "mc2_true_mass",
    "mc_accuracy",
    "mean_and_stderr",
    "pass_at_k",
    "strip_patterns",
]


def mc_accuracy(logprobs: Sequence[float], choices: Sequence[str], gold: int) -> tuple[float, float]:
    """(acc, acc_norm) of one multiple-choice item.

    acc: the highest log-likelihood choice is gold. acc_norm: the same after dividing each log-likelihood
    by its choice's length in characters (lm-eval normalizes by ``len(choice)``, without the delimiter).
    Ties go to the first choice, like ``numpy.argmax``.
    """
    if len(logprobs) != len(choices) or not choices:
        raise ValueError(f"{len(logprobs)} log-likelihoods for {len(choices)} choices")
    lls = np.asarray(logprobs, dtype=np.float64)
    lengths = np.asarray([max(len(c), 1) for c in choices], dtype=np.float64)
    return float(np.argmax(lls) == gold), float(np.argmax(lls / lengths) == gold)


def mc2_true_mass(logprobs: Sequence[float], labels: Sequence[int]) -> float:
    """TruthfulQA MC2: probability mass on true answers, normalized over all answers.

    lm-eval exponentiates the raw log-likelihoods; we subtract the maximum first (the ratio is the same)
    so long answers with very negative log-likelihoods do not underflow to 0/0.
    """
    if len(logprobs) != len(labels) or not labels:
        raise ValueError(f"{len(logprobs)} log-likelihoods for {len(labels)} labels")
    lls = np.asarray(logprobs, dtype=np.float64)
    probs = np.exp(lls - lls.max())
    truth = np.asarray(labels, dtype=bool)
    return float(probs[truth].sum() / probs.sum())


def extract_answer(text: str, pattern: str, *, group_select: int = 0, fallback: str = "[invalid]") -> str:
    """lm-eval's regex filter: the ``group_select``-th match (-1 = last) of ``pattern`` in ``text``.

    With capture groups, a match yields its first non-empty group; no match yields ``fallback``.
    """
    matches = re.findall(pattern, text)
    if not matches:
        return fallback
    try:
        match = matches[group_select]
    except IndexError:
        return fallback
    if isinstance(match, tuple):
        match = next((g for g in match if g), fallback)
    return match.strip()


def strip_patterns(text: str, regexes_to_ignore: Sequence[str]) -> str:
    """``text`` with each regex's matches deleted, in order (exact_match's normalization)."""
    for pattern in regexes_to_ignore:
        text = re.sub(pattern, "", text)
    return text


def exact_match(
    prediction: str, reference: str, *, ignore_case: bool = False, regexes_to_ignore: Sequence[str] = ()
) -> float:
    """1.0 if equal after deleting each regex's matches (in order) and optionally lower-casing."""
    prediction = strip_patterns(prediction, regexes_to_ignore)
    reference = strip_patterns(reference, regexes_to_ignore)
    if ignore_case:
        prediction, reference = prediction.lower(), reference.lower()
    return float(prediction == reference)


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples of which c pass: 1 - C(n-c, k) / C(n, k) (Chen et al., 2021).

    Computed as a running product, not with factorials, so n in the hundreds stays exact enough.
    """
    if not 0 <= c <= n or not 0 < k <= n:
        raise ValueError(f"pass@k needs 0 <= c <= n and 0 < k <= n, got n={n}, c={c}, k={k}")
    if n - c < k:
        return 1.0
    return float(1.0 - np.prod(1.0 - k / np.arange(n - c + 1, n + 1)))


def mean_and_stderr(values: Sequence[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (sample stddev, ddof=1, over sqrt(n)); NaN stderr for n < 2."""
    if not values:
        return math.nan, math.nan
    arr = np.asarray(values, dtype=np.float64)
    if arr.size < 2:
        return float(arr[0]), math.nan
    return float(arr.mean()), float(arr.std(ddof=1) / math.sqrt(arr.size))
