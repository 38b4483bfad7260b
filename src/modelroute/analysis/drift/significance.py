"""The statistical tests drift runs, all from scipy, each one-sided towards "worse".

- a shift of a distribution upwards (latency, cost per request): Mann-Whitney U, with the
  probability that a current value exceeds a baseline one as its effect size;
- a rate going up (errors, cascade escalations) or a pass rate going down (pass/fail
  outcomes): Fisher's exact test on the 2x2 table of counts;
- a mean going down (graded outcomes): Welch's t-test;
- a change in shape (prompt token counts): the two-sample Kolmogorov-Smirnov test, its
  statistic (the largest gap between the two distribution functions) as the effect;
- a change of shares (tasks, routes): the chi-squared test of the 2 x k table, and the
  population stability index as the effect (the symmetrised Kullback-Leibler divergence,
  from scipy's entropy, of the two shares with half a count added to every cell so an empty
  one stays finite).

``adjust`` corrects one check's p-values for their number (Benjamini-Hochberg).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
from scipy import stats


class Tested(NamedTuple):
    test: str
    statistic: float
    p_value: float


def shifted_up(current: Sequence[float], baseline: Sequence[float]) -> tuple[Tested, float]:
    """Mann-Whitney U, current greater; and P(current > baseline) + P(equal) / 2."""
    result = stats.mannwhitneyu(current, baseline, alternative="greater")
    superiority = float(result.statistic) / (len(current) * len(baseline))
    tested = Tested("Mann-Whitney U", float(result.statistic), float(result.pvalue))
    return tested, superiority


def rate_up(events: int, n: int, base_events: int, base_n: int) -> Tested:
    """Fisher's exact test: is the current rate of events higher than the baseline's?"""
    table = [[events, n - events], [base_events, base_n - base_events]]
    result = stats.fisher_exact(table, alternative="greater")
    return Tested("Fisher exact", float(result.statistic), float(result.pvalue))


def rate_down(events: int, n: int, base_events: int, base_n: int) -> Tested:
    """Fisher's exact test: is the current rate lower than the baseline's?"""
    table = [[events, n - events], [base_events, base_n - base_events]]
    result = stats.fisher_exact(table, alternative="less")
    return Tested("Fisher exact", float(result.statistic), float(result.pvalue))


def mean_down(current: Sequence[float], baseline: Sequence[float]) -> Tested:
    """Welch's t-test: is the current mean lower than the baseline's?"""
    result = stats.ttest_ind(current, baseline, equal_var=False, alternative="less")
    p = float(result.pvalue)
    return Tested("Welch t", float(result.statistic), 1.0 if np.isnan(p) else p)


def reshaped(current: Sequence[float], baseline: Sequence[float]) -> Tested:
    """Two-sample Kolmogorov-Smirnov: do the two distributions differ?"""
    result = stats.ks_2samp(current, baseline)
    return Tested("Kolmogorov-Smirnov", float(result.statistic), float(result.pvalue))


def shares_moved(current: Mapping[str, int], baseline: Mapping[str, int]) -> tuple[Tested, float]:
    """Chi-squared test of the shares of each category; and their stability index."""
    names = sorted(k for k in set(current) | set(baseline) if current.get(k) or baseline.get(k))
    cur = np.array([current.get(k, 0) for k in names], dtype=float)
    base = np.array([baseline.get(k, 0) for k in names], dtype=float)
    p_cur, p_base = (cur + 0.5) / (cur + 0.5).sum(), (base + 0.5) / (base + 0.5).sum()
    psi = float(stats.entropy(p_cur, p_base) + stats.entropy(p_base, p_cur))
    if len(names) < 2:
        return Tested("chi-squared", 0.0, 1.0), psi
    result = stats.chi2_contingency(np.vstack([cur, base]))
    return Tested("chi-squared", float(result.statistic), float(result.pvalue)), psi


def adjust(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (the false discovery rate of each rejection)."""
    if not p_values:
        return []
    return [float(p) for p in stats.false_discovery_control(np.asarray(p_values), method="bh")]
