"""Whether a model's measured quality meets a task's threshold, and what would settle it.

A model **meets** the threshold when the lower bound of its quality interval (95%, from
``outcomes.intervals``: Wilson for pass/fail scores, a seeded bootstrap for graded ones)
clears it, on at least ``min_samples`` outcomes; it is **below** when even the upper bound
falls short; anything else (too few outcomes, or an interval that straddles the threshold)
is **not enough evidence**, and the audit names the measurement that would settle it.

Which outcomes count: those of the task itself (its label, or the live requests with its
task key: shadow comparisons and feedback), else those of the route that serves it (an
evaluation of the route's models applies to every task on the route, as it does for the
planner). Only the model's current version counts (``outcomes.aggregate``): a version the
provider has since replaced measures a model that no longer answers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from modelroute.outcomes.aggregate import Aggregate, aggregate, current

Verdict = Literal["meets", "below", "not_enough"]
Scope = Literal["task", "route"]
CONFIDENCE = 0.95
_Z = 1.959963984540054  # the two-sided 95% normal quantile, for the sample size needed


@dataclass(frozen=True, slots=True)
class Evidence:
    """What the outcomes say about one model on one task."""

    model: str
    verdict: Verdict
    scope: Scope | None  # whose outcomes: the task's, the route's, or none at all
    found: Aggregate | None
    needed: int  # outcomes needed for a verdict, when there is none yet

    def describe(self) -> str:
        if self.found is None:
            return "no outcomes (n=0)"
        where = "" if self.scope == "task" else f", route {self.found.key}"
        return self.found.describe().rstrip(")") + where + ")"

    def to_dict(self) -> dict[str, Any]:
        found = self.found
        return {
            "model": self.model,
            "verdict": self.verdict,
            "scope": self.scope,
            "mean": None if found is None else found.mean,
            "low": None if found is None else found.interval.low,
            "high": None if found is None else found.interval.high,
            "n": 0 if found is None else found.n,
            "confidence": CONFIDENCE,
            "method": None if found is None else found.interval.method,
            "version": None if found is None else found.version,
            "sources": [] if found is None else list(found.sources),
            "needed": self.needed,
        }


class Quality:
    """The current-version quality aggregates of the audited tasks and of every route."""

    def __init__(self, task_rows: list[Any], route_rows: list[Any], min_samples: int) -> None:
        self.by_task = current(aggregate(task_rows, "task", CONFIDENCE))
        self.by_route = current(aggregate(route_rows, "route", CONFIDENCE))
        self.min_samples = min_samples

    def models(self, task: str, route: str | None) -> set[str]:
        """Every model with outcomes for this task or its route."""
        found = {m for (key, m) in self.by_task if key == task}
        return found | {m for (key, m) in self.by_route if key == route}

    def evidence(
        self,
        task: str,
        route: str | None,
        model: str,
        threshold: float,
        min_samples: int | None = None,
    ) -> Evidence:
        """``min_samples``: the route's own, when it has one (else the audit's)."""
        least = self.min_samples if min_samples is None else min_samples
        own = self.by_task.get((task, model))
        shared = self.by_route.get((route, model)) if route is not None else None
        if own is not None and own.n >= least:
            return self._judge(model, "task", own, threshold, least)
        if shared is not None and shared.n >= least:
            return self._judge(model, "route", shared, threshold, least)
        thin = max((a for a in (own, shared) if a is not None), key=lambda a: a.n, default=None)
        scope: Scope | None = None if thin is None else ("task" if thin is own else "route")
        return Evidence(model, "not_enough", scope, thin, _needed(thin, threshold, least))

    @staticmethod
    def _judge(
        model: str, scope: Scope, found: Aggregate, threshold: float, least: int
    ) -> Evidence:
        low, high = found.interval.low, found.interval.high
        if low is not None and low >= threshold:
            return Evidence(model, "meets", scope, found, 0)
        if high is not None and high < threshold:
            return Evidence(model, "below", scope, found, 0)
        return Evidence(model, "not_enough", scope, found, _needed(found, threshold, least))


def _needed(found: Aggregate | None, threshold: float, least: int) -> int:
    """Outcomes at which the interval would clear ``threshold`` if the mean held (a normal
    approximation); the minimum when the mean is not above it."""
    mean = None if found is None else found.mean
    if mean is None or mean <= threshold:
        return least
    n = _Z * _Z * mean * (1 - mean) / (mean - threshold) ** 2
    return max(least, math.ceil(n))
