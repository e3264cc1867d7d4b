"""Metric functions against hand-computed values (the numbers lm-eval and Chen et al. define)."""

from __future__ import annotations

import math

import pytest

from shipyard.evaluation import metrics


def test_acc_and_acc_norm_disagree_when_length_normalization_changes_the_winner() -> None:
    # Raw: choice 0 (-5) wins. Per character: -5/1, -6/6 = -1, -9/9 = -1; the first of the tie (1) wins.
    acc, acc_norm = metrics.mc_accuracy([-5.0, -6.0, -9.0], ["a", "bbbbbb", "ccccccccc"], gold=1)
    assert (acc, acc_norm) == (0.0, 1.0)


def test_acc_counts_the_gold_choice_with_the_highest_loglikelihood() -> None:
    assert metrics.mc_accuracy([-3.0, -1.0], ["yes", "no"], gold=1) == (1.0, 1.0)


def test_mc2_is_the_normalized_probability_mass_on_true_answers() -> None:
    lls = [math.log(0.2), math.log(0.1), math.log(0.3)]
    assert metrics.mc2_true_mass(lls, [1, 1, 0]) == pytest.approx(0.5)


def test_mc2_survives_loglikelihoods_that_underflow_exp() -> None:
    # exp(-1000) is 0.0 in float64; lm-eval's formula would give 0/0 here.
    assert metrics.mc2_true_mass([-1000.0, -1001.0], [1, 0]) == pytest.approx(1 / (1 + math.exp(-1)))


@pytest.mark.parametrize(
    ("n", "c", "k", "expected"),
    [
        (1, 1, 1, 1.0),
        (10, 0, 1, 0.0),
        (10, 3, 1, 0.3),
        (5, 2, 2, 1 - math.comb(3, 2) / math.comb(5, 2)),  # 0.7
        (200, 10, 100, 1 - math.comb(190, 100) / math.comb(200, 100)),
        (10, 8, 5, 1.0),  # fewer than k failures: some k-subset always passes
    ],
)
def test_pass_at_k_matches_the_combinatorial_definition(n: int, c: int, k: int, expected: float) -> None:
    assert metrics.pass_at_k(n, c, k) == pytest.approx(expected, rel=1e-12)


def test_pass_at_k_rejects_impossible_counts() -> None:
    with pytest.raises(ValueError, match="0 < k <= n"):
        metrics.pass_at_k(5, 1, 10)


def test_stderr_is_sample_stddev_over_sqrt_n() -> None:
    # mean 0.75; sample variance ((3 * 0.25**2) + 0.75**2) / 3 = 0.25; stderr sqrt(0.25) / 2 = 0.25.
    assert metrics.mean_and_stderr([1.0, 0.0, 1.0, 1.0]) == pytest.approx((0.75, 0.25))


def test_stderr_of_a_single_value_is_undefined() -> None:
    mean, stderr = metrics.mean_and_stderr([1.0])
    assert mean == 1.0 and math.isnan(stderr)


def test_exact_match_applies_gsm8k_normalizations() -> None:
    ignore = [",", "\\$", "(?s).*#### ", "\\.$"]
    reference = "She makes 9 * 2 = $<<9*2=18>>18.\n#### 1,018"
    assert metrics.exact_match("$1,018.", reference, ignore_case=True, regexes_to_ignore=ignore) == 1.0
    assert metrics.exact_match("1019", reference, ignore_case=True, regexes_to_ignore=ignore) == 0.0


def test_strict_extraction_takes_the_number_after_the_hashes() -> None:
    text = "3 + 4 = 7 eggs.\n#### 18\n\nand then 99"
    assert metrics.extract_answer(text, "#### (\\-?[0-9\\.\\,]+)") == "18"


def test_flexible_extraction_takes_the_last_number() -> None:
    text = "She has 16 - 3 - 4 = 9 eggs, so she makes $18"
    assert metrics.extract_answer(text, "(-?[$0-9.,]{2,})|(-?[0-9]+)", group_select=-1) == "$18"


def test_extraction_without_a_match_returns_the_fallback() -> None:
    assert metrics.extract_answer("no numbers here", "#### (\\d+)") == "[invalid]"
