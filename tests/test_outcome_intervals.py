"""The intervals printed beside every measured quality: the right method for the scores, the
stated coverage, and never a certainty the evidence does not give."""

from __future__ import annotations

import numpy as np
from scipy import stats

from modelroute.outcomes.intervals import difference, estimate


def test_pass_fail_scores_get_scipys_wilson_interval() -> None:
    scores = [1.0] * 87 + [0.0] * 13
    got = estimate(scores)
    ci = stats.binomtest(87, 100).proportion_ci(0.95, method="wilson")
    assert got.method == "wilson" and got.n == 100 and got.mean == 0.87
    assert (got.low, got.high) == (ci.low, ci.high)
    assert got.describe() == f"0.87 ±{(ci.high - ci.low) / 2:.2f} (n=100)"


def test_graded_scores_get_a_seeded_bootstrap_around_the_mean() -> None:
    scores = list(np.random.default_rng(1).uniform(0.4, 1.0, 300))
    first, again = estimate(scores), estimate(scores)
    assert first == again and first.method == "bootstrap"
    assert first.low is not None and first.high is not None and first.mean is not None
    assert first.low < first.mean < first.high


def test_equal_graded_scores_are_not_taken_as_certain() -> None:
    same = estimate([0.8] * 30)
    assert same.method == "wilson" and same.low is not None and same.high is not None
    assert same.high - same.low > 0.1  # 30 ratings cannot pin a mean to a point
    assert same.low < 0.8 < same.high


def test_no_scores_is_no_data() -> None:
    assert estimate([]).mean is None and estimate([]).describe() == "no data (n=0)"


def test_the_wilson_interval_covers_the_true_rate_as_often_as_it_says() -> None:
    rng = np.random.default_rng(7)
    runs, covered = 400, 0
    for _ in range(runs):
        draw = estimate(list((rng.random(200) < 0.7).astype(float)))
        assert draw.low is not None and draw.high is not None
        covered += draw.low <= 0.7 <= draw.high
    # coverage consistent with 95% (a two-sided binomial test does not reject it at 1%)
    assert stats.binomtest(covered, runs, 0.95).pvalue > 0.01, covered


def test_a_difference_between_versions_has_its_interval() -> None:
    old = [1.0] * 80 + [0.0] * 20
    new = [1.0] * 60 + [0.0] * 40
    diff = difference(old, new)
    assert diff.mean is not None and abs(diff.mean + 0.2) < 1e-12
    assert diff.low is not None and diff.high is not None and diff.high < 0  # a real drop
    assert difference([], new).mean is None
