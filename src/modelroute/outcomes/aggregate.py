"""Measured quality per (route or task, model, provider-reported version), with its interval.

An aggregate is every stored outcome of one group: its mean, sample size and confidence
interval (``intervals.estimate``: Wilson for pass/fail scores, a seeded bootstrap for graded
ones), which sources contributed (eval, shadow, feedback, import) and when.

Which version counts. Quality is kept per version because a provider may change the model
behind a name without notice. For each (route or task, model) the **current** version is the
one its newest outcome reports (its provider-reported model, or the policy's name when the
provider reported none). The planner reads the current version's aggregate only: the outcomes
of older versions do not count for it. So a silent model update sends the planner back to the
policy's prior until the new version has ``min_samples`` outcomes of its own, and a rollback
to an earlier version brings that version's outcomes back into use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from modelroute.outcomes.intervals import Interval, estimate
from modelroute.outcomes.outcome import Outcome, OutcomeSource
from modelroute.outcomes.quality_text import describe_quality
from modelroute.records.stores.base import OutcomeScope, ScoreRow, Store

# Sources in a fixed order, so that a label such as "eval+shadow" is always spelled one way.
_SOURCE_ORDER = {str(s): i for i, s in enumerate(OutcomeSource)}


@dataclass(frozen=True, slots=True)
class Aggregate:
    by: OutcomeScope  # what ``key`` names: a route or a task
    key: str
    model: str
    version: str  # the provider-reported model (or the model, when none was reported)
    interval: Interval  # mean, n and the interval of the scores
    sources: tuple[str, ...]  # the sources that contributed, in OutcomeSource order
    first_at: float  # the oldest outcome's time
    last_at: float  # the newest outcome's time
    current: bool  # this group's version is its (key, model)'s newest: the planner reads it

    @property
    def mean(self) -> float | None:
        return self.interval.mean

    @property
    def n(self) -> int:
        return self.interval.n

    @property
    def source_label(self) -> str:
        """``eval``, ``eval+shadow``, ...: how the figure was measured."""
        return "+".join(self.sources)

    def describe(self) -> str:
        """``0.87 ±0.03 (n=412, eval, small-2024-07-18)``."""
        return describe_quality(
            self.interval.mean, self.interval.half_width, self.n, self.source_label, self.version
        )

    def to_dict(self) -> dict[str, Any]:
        iv = self.interval
        return {
            "by": self.by,
            self.by: self.key,
            "model": self.model,
            "version": self.version,
            "current": self.current,
            "mean": iv.mean,
            "n": iv.n,
            "low": iv.low,
            "high": iv.high,
            "confidence": iv.confidence,
            "method": iv.method,
            "sources": list(self.sources),
            "first_at": self.first_at,
            "last_at": self.last_at,
        }


def score_rows(outcomes: Iterable[Outcome], by: OutcomeScope = "route") -> list[ScoreRow]:
    """Outcomes as the rows ``Store.outcome_scores`` gives (for outcomes held in memory)."""
    rows: list[ScoreRow] = []
    for o in outcomes:
        key = o.route if by == "route" else o.task
        if key is not None:
            rows.append((key, o.model, o.version, str(o.source), o.score, o.created_at))
    return rows


@dataclass(slots=True)
class _Group:
    scores: list[float]
    sources: set[str]
    first_at: float
    last_at: float


def aggregate(
    rows: Iterable[ScoreRow], by: OutcomeScope = "route", confidence: float = 0.95
) -> list[Aggregate]:
    """One aggregate per (key, model, version), sorted by key, model, then newest version
    first."""
    groups: dict[tuple[str, str, str], _Group] = {}
    for key, model, version, source, score, at in rows:
        group = groups.get((key, model, version))
        if group is None:
            groups[(key, model, version)] = _Group([score], {source}, at, at)
            continue
        group.scores.append(score)
        group.sources.add(source)
        if at < group.first_at:
            group.first_at = at
        if at > group.last_at:
            group.last_at = at
    newest: dict[tuple[str, str], tuple[float, str]] = {}
    for (key, model, version), group in groups.items():
        # ties (the same newest time) go to the greater version name: one answer, always
        mark = (group.last_at, version)
        if newest.get((key, model), (float("-inf"), "")) < mark:
            newest[(key, model)] = mark
    out = [
        Aggregate(
            by=by,
            key=key,
            model=model,
            version=version,
            interval=estimate(group.scores, confidence),
            sources=tuple(sorted(group.sources, key=lambda s: _SOURCE_ORDER.get(s, 99))),
            first_at=group.first_at,
            last_at=group.last_at,
            current=newest[(key, model)][1] == version,
        )
        for (key, model, version), group in groups.items()
    ]
    out.sort(key=lambda a: (a.key, a.model, not a.current, -a.last_at, a.version))
    return out


def current(aggregates: Iterable[Aggregate]) -> dict[tuple[str, str], Aggregate]:
    """(key, model) -> the aggregate of its current version: what the planner reads."""
    return {(a.key, a.model): a for a in aggregates if a.current}


async def load(
    store: Store,
    by: OutcomeScope = "route",
    *,
    source: OutcomeSource | None = None,
    since: float | None = None,
    confidence: float = 0.95,
) -> list[Aggregate]:
    """The aggregates of the outcomes in ``store``. The grouping and intervals run in a worker
    thread: a gateway refreshing them keeps serving meanwhile."""
    rows = await store.outcome_scores(by, source=source, since=since)
    return await asyncio.to_thread(aggregate, rows, by, confidence)
