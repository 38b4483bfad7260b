"""Reading the rollups: figures per time bucket, per route and model, and rejection counts.

A range is read at the rollups' grain: a minute bucket counts when its start lies in
[since rounded down to the minute, until). Whole hours inside the range come from the hourly
tables (60 times fewer rows), the ragged minutes at either end from the per-minute ones.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelroute.dashboard.views import Point
from modelroute.records.rollups import (
    HISTOGRAM,
    LATENCY_BUCKETS,
    WIDTHS,
    Grain,
    percentile,
    representative,
)
from modelroute.records.stores.base import Store

# requests, errors, fallbacks, escalations, spend, then the histogram
_SUMS = ("requests", "errors", "fallbacks", "escalations", "spend_usd", *HISTOGRAM)
SUMS_SQL = ", ".join(f"SUM({c})" for c in _SUMS)
_HIST = 5


def placeholders(store: Store) -> Callable[[int], str]:
    return (lambda n: "?") if store.dialect == "sqlite" else (lambda n: f"${n}")


@dataclass(slots=True)
class Figures:
    """Sums of rollup rows: what a ``Point`` is made of."""

    values: list[float] = field(default_factory=lambda: [0] * len(_SUMS))

    def add(self, row: Sequence[Any]) -> None:
        v = self.values
        for i, x in enumerate(row):
            if x:
                v[i] += x

    @property
    def requests(self) -> int:
        return int(self.values[0])

    def point(self, at: float) -> Point:
        v = self.values
        hist = [int(x) for x in v[_HIST : _HIST + LATENCY_BUCKETS]]
        return Point(
            at=at,
            requests=int(v[0]),
            errors=int(v[1]),
            fallbacks=int(v[2]),
            escalations=int(v[3]),
            spend_usd=float(v[4]),
            p50_latency_ms=percentile(hist, 0.5),
            p95_latency_ms=percentile(hist, 0.95),
        )


def spans(since: float, until: float) -> list[tuple[Grain, int, int]]:
    """The (grain, first bucket, end) pieces that cover [since, until) at minute grain."""
    lo = int(since // 60) * 60
    hi = math.ceil(until)
    if hi <= lo:
        return []
    h0 = -(-lo // 3600) * 3600
    h1 = hi // 3600 * 3600
    if h0 >= h1:
        return [("minute", lo, hi)]
    out: list[tuple[Grain, int, int]] = [("hour", h0, h1)]
    if lo < h0:
        out.append(("minute", lo, h0))
    if h1 < hi:
        out.append(("minute", h1, hi))
    return out


async def by_key(
    store: Store, since: float, until: float, keys: str = "route, model"
) -> dict[tuple[Any, ...], Figures]:
    """Figures per ``keys`` (columns of the rollups) over the range."""
    p = placeholders(store)
    out: dict[tuple[Any, ...], Figures] = {}
    for grain, lo, hi in spans(since, until):
        sql = (
            f"SELECT {keys}, {SUMS_SQL} FROM rollup_{grain} "
            f"WHERE bucket >= {p(1)} AND bucket < {p(2)} GROUP BY {keys}"
        )
        width = keys.count(",") + 1
        for row in await store.read_sql(sql, (lo, hi)):
            key = tuple(_none(x) for x in row[:width])
            out.setdefault(key, Figures()).add(row[width:])
    return out


async def rejections(
    store: Store, since: float, until: float
) -> dict[tuple[str | None, str, str], int]:
    """(route, candidate, reason) -> requests over the range."""
    p = placeholders(store)
    out: dict[tuple[str | None, str, str], int] = {}
    for grain, lo, hi in spans(since, until):
        sql = (
            f"SELECT route, candidate, reason, SUM(requests) FROM rejections_{grain} "
            f"WHERE bucket >= {p(1)} AND bucket < {p(2)} GROUP BY route, candidate, reason"
        )
        for route, candidate, reason, n in await store.read_sql(sql, (lo, hi)):
            key = (_none(route), candidate, reason)
            out[key] = out.get(key, 0) + int(n)
    return out


@dataclass(frozen=True, slots=True)
class Lines:
    """Sums per bucket: ``total`` (n × sums), and per route and per model (k × n × sums)."""

    total: np.ndarray
    routes: list[str | None]
    by_route: np.ndarray
    models: list[str | None]
    by_model: np.ndarray


async def series(store: Store, start: int, until: float, step: int, n: int) -> Lines:
    """Sums per step-wide bucket from ``start`` (a multiple of ``step``), in total, by route
    and by model, read from the hourly table when ``step`` is whole hours."""
    grain: Grain = "hour" if step % WIDTHS["hour"] == 0 else "minute"
    p = placeholders(store)
    if step == WIDTHS[grain]:  # one bucket a row already: no grouping (nor its sort)
        sql = (
            f"SELECT bucket, route, model, {', '.join(_SUMS)} FROM rollup_{grain} "
            f"WHERE bucket >= {p(1)} AND bucket < {p(2)}"
        )
        rows = await store.read_sql(sql, (start, math.ceil(until)))
    else:
        sql = (
            f"SELECT bucket - (bucket - {p(1)}) % {p(2)}, route, model, {SUMS_SQL} "
            f"FROM rollup_{grain} WHERE bucket >= {p(3)} AND bucket < {p(4)} "
            "GROUP BY 1, 2, 3"
        )
        rows = await store.read_sql(sql, (start, step, start, math.ceil(until)))
    sums = np.array([r[3:] for r in rows], dtype=np.float64).reshape(len(rows), len(_SUMS))
    k = (np.array([r[0] for r in rows], dtype=np.int64) - start) // step
    keep = (k >= 0) & (k < n)

    def lines(column: int) -> tuple[list[str | None], np.ndarray]:
        names: dict[str | None, int] = {}
        index = np.array([names.setdefault(_none(r[column]), len(names)) for r in rows])
        out = np.zeros((len(names), n, len(_SUMS)))
        if len(rows):
            np.add.at(out, (index[keep], k[keep]), sums[keep])
        return list(names), out

    routes, by_route = lines(1)
    models, by_model = lines(2)
    return Lines(by_route.sum(axis=0), routes, by_route, models, by_model)


_REPRESENTATIVE = np.array([representative(i) for i in range(LATENCY_BUCKETS)])


def _percentiles(hist: np.ndarray, p: float) -> np.ndarray:
    """Nearest-rank percentiles of each histogram row (NaN for an empty one)."""
    cum = hist.cumsum(axis=-1)
    total = cum[..., -1]
    rank = np.maximum(1, np.ceil(p * total - 1e-9))
    index = (cum >= rank[..., None]).argmax(axis=-1)
    return np.where(total > 0, _REPRESENTATIVE[index], np.nan)


def points(sums: np.ndarray, buckets: Sequence[float]) -> tuple[Point, ...]:
    """One ``Point`` per row of ``sums`` (n × sums), at ``buckets``."""
    hist = sums[:, _HIST : _HIST + LATENCY_BUCKETS]
    p50, p95 = _percentiles(hist, 0.5).tolist(), _percentiles(hist, 0.95).tolist()
    head = sums[:, :_HIST].tolist()
    return tuple(
        Point(at, int(h[0]), int(h[1]), int(h[2]), int(h[3]), float(h[4]),
              None if math.isnan(a) else a, None if math.isnan(b) else b)
        for at, h, a, b in zip(buckets, head, p50, p95, strict=True)
    )  # fmt: skip


def _none(x: Any) -> Any:
    """The rollups keep a missing route or model as ''."""
    return None if x == "" else x
