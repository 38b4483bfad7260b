"""The interval around a measured quality, from maintained statistics (scipy).

Pass/fail scores (every score 0 or 1) get the Wilson score interval, which stays inside [0, 1]
and behaves at small n and near 0 or 1. Graded scores get a seeded percentile bootstrap of the
mean, so the same scores always give the same interval; graded scores that are all equal (no
spread to resample) get the Wilson interval of their mean, the widest a [0, 1] score allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Method = Literal["wilson", "bootstrap", "none"]

_BOOTSTRAP_RESAMPLES = 2000
_SEED = 20240718


@dataclass(frozen=True, slots=True)
class Interval:
    mean: float | None
    low: float | None
    high: float | None
    n: int
    confidence: float
    method: Method

    @property
    def half_width(self) -> float | None:
        """The ± a reader sees: half the interval's width."""
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2

    def describe(self) -> str:
        """``0.87 ±0.03 (n=412)``, or ``no data``."""
        if self.mean is None:
            return "no data (n=0)"
        hw = self.half_width
        spread = "" if hw is None else f" ±{hw:.2f}"
        return f"{self.mean:.2f}{spread} (n={self.n})"


def estimate(scores: Sequence[float], confidence: float = 0.95) -> Interval:
    """Mean of ``scores`` (each in [0, 1]) with a two-sided ``confidence`` interval."""
    n = len(scores)
    if n == 0:
        return Interval(None, None, None, 0, confidence, "none")
    # Imported here: a gateway whose store holds no scores yet, or a command that never
    # estimates, does not pay for them (~0.5 s and ~50 MiB).
    import numpy as np
    from scipy import stats

    values = np.asarray(scores, dtype=float)
    mean = float(values.mean())
    if np.all((values == 0.0) | (values == 1.0)):
        ci = stats.binomtest(int(values.sum()), n).proportion_ci(confidence, method="wilson")
        return Interval(mean, float(ci.low), float(ci.high), n, confidence, "wilson")
    if n == 1 or float(values.min()) == float(values.max()):
        # No spread to resample: a bootstrap would claim certainty. A score in [0, 1] with mean
        # p varies at most as a pass/fail score does, so Wilson's interval for the same mean
        # bounds it (never narrower than the evidence allows).
        ci = stats.binomtest(round(mean * n), n).proportion_ci(confidence, method="wilson")
        return Interval(mean, float(ci.low), float(ci.high), n, confidence, "wilson")
    result = stats.bootstrap(
        (values,),
        np.mean,
        confidence_level=confidence,
        n_resamples=_BOOTSTRAP_RESAMPLES,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(_SEED),
    )
    low, high = result.confidence_interval
    return Interval(mean, float(low), float(high), n, confidence, "bootstrap")


def difference(old: Sequence[float], new: Sequence[float], confidence: float = 0.95) -> Interval:
    """``mean(new) - mean(old)`` with a seeded bootstrap interval (independent samples):
    how two versions of a model differ, with its uncertainty."""
    if not old or not new:
        return Interval(None, None, None, min(len(old), len(new)), confidence, "none")
    import numpy as np
    from scipy import stats

    a = np.asarray(old, dtype=float)
    b = np.asarray(new, dtype=float)
    diff = float(b.mean() - a.mean())

    def statistic(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.asarray(np.mean(y, axis=axis) - np.mean(x, axis=axis))

    result = stats.bootstrap(
        (a, b),
        statistic,
        confidence_level=confidence,
        n_resamples=_BOOTSTRAP_RESAMPLES,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(_SEED),
    )
    low, high = result.confidence_interval
    return Interval(diff, float(low), float(high), min(len(a), len(b)), confidence, "bootstrap")
