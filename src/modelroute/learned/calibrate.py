"""The route's threshold, calibrated to a quality target on validation prompts.

For a threshold ``t`` the route serves each prompt with the cheapest model whose predicted
score clears ``t`` (the highest predicted when none does), as the planner does. ``t`` is the
cheapest one whose mean measured score reaches ``target`` x the best single model's mean on
the same prompts; when none does, the one with the highest quality (and ``met`` is False).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
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

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def choose(pred: F64, order: npt.NDArray[np.int64], threshold: float) -> npt.NDArray[np.int64]:
    """The model index each prompt goes to at ``threshold`` (``order``: cheapest first)."""
    clears = pred[:, order] >= threshold
    first = order[np.argmax(clears, axis=1)]
    out: npt.NDArray[np.int64] = np.where(clears.any(axis=1), first, np.argmax(pred, axis=1))
    return out


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
) -> Calibration:
    rows = complete_rows(score)
    if not rows.any():
        raise ValueError("no validation prompt has an outcome for every model")
    pred, score, cost = pred[rows], score[rows], cost[rows]
    means = score.mean(axis=0)
    best = int(np.argmax(means))
    goal = target * float(means[best])
    grid = np.unique(np.concatenate([np.round(pred.ravel(), 3), [0.0, 1.0001]]))
    index = np.arange(len(pred))
    results = []
    for t in grid:
        chosen = choose(pred, order, float(t))
        results.append((float(t), score[index, chosen].mean(), cost[index, chosen].mean()))
    feasible = [r for r in results if r[1] >= goal]
    if feasible:
        t, q, c = min(feasible, key=lambda r: (r[2], -r[1]))
    else:
        t, q, c = max(results, key=lambda r: (r[1], -r[2]))
    interval = estimate(score[index, choose(pred, order, t)].tolist())
    return Calibration(
        quality_low=interval.low,
        quality_high=interval.high,
        threshold=t,
        target=target,
        target_quality=goal,
        quality=float(q),
        cost=float(c),
        met=bool(feasible),
        n=len(pred),
        best_model=models[best],
        best_quality=float(means[best]),
        best_cost=float(cost[:, best].mean()),
    )
