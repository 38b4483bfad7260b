"""The route's threshold (or lambda), calibrated to a quality target on validation prompts.

Rule ``threshold``: for a threshold ``t`` the route serves each prompt with the cheapest model
whose predicted score clears ``t`` (the highest predicted when none does), as the planner
does. Rule ``score_minus_cost``: for a lambda ``l`` it serves each prompt with the model of
the highest predicted score - ``l`` x its cost for that prompt (USD), the cheaper among
equals. The value kept is the cheapest one whose mean measured score reaches ``target`` x the
best single model's mean on the same prompts; when none does, the one with the highest
quality (and ``met`` is False).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from modelroute.outcomes.intervals import estimate

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Calibration:
    threshold: float
    target: float
    target_quality: float  # target x the best single model's quality
    quality: float  # the route's mean score at the threshold
    cost: float  # the route's mean cost per prompt, USD
    met: bool
    n: int  # validation prompts every model answered
    best_model: str
    best_quality: float
    best_cost: float
    quality_low: float | None = None  # the quality's 95% interval over the n prompts
    quality_high: float | None = None
    rule: str = "threshold"  # or "score_minus_cost", whose value is ``lam``
    lam: float | None = None  # score per USD (rule score_minus_cost)

    @property
    def setting(self) -> str:
        """The calibrated value as people read it."""
        if self.rule == "score_minus_cost" and self.lam is not None:
            return f"lambda {self.lam:.4g}/USD"
        return f"threshold {self.threshold:.3f}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose(pred: F64, order: npt.NDArray[np.int64], threshold: float) -> npt.NDArray[np.int64]:
    """The model index each prompt goes to at ``threshold`` (``order``: cheapest first)."""
    clears = pred[:, order] >= threshold
    first = order[np.argmax(clears, axis=1)]
    out: npt.NDArray[np.int64] = np.where(clears.any(axis=1), first, np.argmax(pred, axis=1))
    return out


def choose_utility(pred: F64, cost: F64, order: npt.NDArray[np.int64], lam: float) -> Any:
    """The model index each prompt goes to at ``lam``: the highest predicted score - ``lam``
    x cost, the cheaper (earlier in ``order``) among equals."""
    utility = pred[:, order] - lam * cost[:, order]
    return order[np.argmax(utility, axis=1)]


def lambda_grid(cost: F64, steps: int = 241) -> F64:
    """Lambdas from 0 (the highest predicted score wins) to where the cheapest model always
    does: 0 and ``steps`` steps on a log scale (1e-4 to 1e4) over the typical cost difference
    between a prompt's models (the median of each row's gaps, NaN ignored)."""
    spread = np.abs(np.diff(np.sort(cost, axis=1), axis=1))
    positive = spread[spread > 0]  # NaN compares False: dropped
    scale = float(np.median(positive)) if positive.size else 1.0
    return np.concatenate([[0.0], np.logspace(-4, 4, steps) / scale])


def complete_rows(score: F64) -> npt.NDArray[np.bool_]:
    out: npt.NDArray[np.bool_] = np.asarray(~np.isnan(score).any(axis=1))
    return out


def calibrate(
    pred: F64,
    score: F64,
    cost: F64,
    order: npt.NDArray[np.int64],
    models: tuple[str, ...],
    target: float,
    rule: str = "threshold",
) -> Calibration:
    """The calibration of ``rule``, ``threshold`` or ``score_minus_cost`` (whose lambda is in
    score per USD); see the module's docstring."""
    pred, score, cost = _complete(pred, score, cost)
    if rule == "score_minus_cost":
        grid = lambda_grid(cost)
        picks = {float(lam): choose_utility(pred, cost, order, float(lam)) for lam in grid}
    else:
        grid = np.unique(np.concatenate([np.round(pred.ravel(), 3), [0.0, 1.0001]]))
        picks = {float(t): choose(pred, order, float(t)) for t in grid}
    return _pick(picks, score, cost, models, target, rule)


# The score_minus_cost rule's calibration: lambda in score per USD.
calibrate_lambda = partial(calibrate, rule="score_minus_cost")


def _complete(pred: F64, score: F64, cost: F64) -> tuple[F64, F64, F64]:
    rows = complete_rows(score) & ~np.isnan(cost).any(axis=1)
    if not rows.any():
        raise ValueError("no validation prompt has an outcome for every model")
    return pred[rows], score[rows], cost[rows]


def _pick(
    picks: dict[float, Any],
    score: F64,
    cost: F64,
    models: tuple[str, ...],
    target: float,
    rule: str,
) -> Calibration:
    """The cheapest setting meeting the goal (the higher quality among equal costs, then the
    first in ``picks``); the highest quality when none does."""
    means = score.mean(axis=0)
    best = int(np.argmax(means))
    goal = target * float(means[best])
    index = np.arange(len(score))
    results = [
        (value, float(score[index, chosen].mean()), float(cost[index, chosen].mean()))
        for value, chosen in picks.items()
    ]
    feasible = [r for r in results if r[1] >= goal]
    if feasible:
        value, q, c = min(feasible, key=lambda r: (r[2], -r[1]))
    else:
        value, q, c = max(results, key=lambda r: (r[1], -r[2]))
    interval = estimate(score[index, picks[value]].tolist())
    lam = rule == "score_minus_cost"
    return Calibration(
        quality_low=interval.low,
        quality_high=interval.high,
        threshold=float("nan") if lam else value,
        target=target,
        target_quality=goal,
        quality=q,
        cost=c,
        met=bool(feasible),
        n=len(score),
        best_model=models[best],
        best_quality=float(means[best]),
        best_cost=float(cost[:, best].mean()),
        rule=rule,
        lam=value if lam else None,
    )
