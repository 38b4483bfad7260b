"""Routing metrics over cost-quality points: pure functions of numbers.

A point is ``(cost, quality)``: mean cost per prompt and mean score of one way of routing
(one model, one threshold of a router). Definitions:

- **frontier** (RouterBench's non-decreasing convex hull): the best quality reachable at each
  cost by mixing the given operating points at random (the upper concave hull of the points,
  from the cheapest point on, cut where quality stops rising and flat after it).
- **AIQ** (RouterBench, Hu et al. 2024, eq. "average improvement in quality"): the frontier's
  area over ``[c_min, c_max]`` divided by the width; the frontier is 0 below its cheapest point
  and keeps its best quality beyond its dearest one (as RouterBench's ``evaluation/AIQ.py``
  extends it). Over single models' points it is the **zero router**'s AIQ: any mix of models
  is a router that learned nothing.
- **PGR / APGR / CPT** (RouteLLM, Ong et al. 2024) for a strong and a weak model:
  ``PGR = (q - q_weak) / (q_strong - q_weak)``; APGR is the area under PGR against the share of
  calls sent to the strong model, from 0 to 1 (all weak scores PGR 0, all strong 1; between
  the points, linear, by the trapezoid rule); ``CPT(x)`` is the smallest share of strong calls
  whose PGR reaches ``x`` (linear between points).
- **oracle**: per prompt, the best score any model got, at the cost of the cheapest model
  that got it.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import numpy as np

from modelroute.analysis.simulate.table import Floats

Point = tuple[float, float]


def frontier(points: Sequence[Point]) -> list[Point]:
    """The non-decreasing concave hull of ``points``, cheapest first."""
    if not points:
        return []
    ordered = sorted(points, key=lambda p: (p[0], -p[1]))
    rising: list[Point] = []
    for cost, quality in ordered:  # drop points no better than a cheaper one
        if not rising or quality > rising[-1][1]:
            if rising and cost == rising[-1][0]:
                rising.pop()
            rising.append((cost, quality))
    hull: list[Point] = []
    for point in rising:  # the upper hull: drop a point on or under the chord around it
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], point) >= 0:
            hull.pop()
        hull.append(point)
    return hull


def _cross(a: Point, b: Point, c: Point) -> float:
    """> 0 when ``b`` lies below the chord from ``a`` to ``c`` (a left turn)."""
    return (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])


def quality_at(front: Sequence[Point], cost: float) -> float | None:
    """The frontier's quality at ``cost``; None below its cheapest point."""
    if not front or cost < front[0][0]:
        return None
    xs = [p[0] for p in front]
    ys = [p[1] for p in front]
    return float(np.interp(cost, xs, ys))


def cost_at(front: Sequence[Point], quality: float) -> float | None:
    """The least cost at which the frontier reaches ``quality``; None if it never does."""
    if not front or quality > front[-1][1]:
        return None
    if quality <= front[0][1]:
        return front[0][0]
    for (c0, q0), (c1, q1) in pairwise(front):
        if q0 < quality <= q1:
            return c0 + (c1 - c0) * (quality - q0) / (q1 - q0)
    return None  # pragma: no cover (the loop covers every quality up to the last)


def aiq(points: Sequence[Point], c_min: float, c_max: float) -> float:
    """RouterBench's AIQ of ``points`` over ``[c_min, c_max]``."""
    if c_max <= c_min:
        raise ValueError("AIQ needs c_max > c_min")
    front = frontier(points)
    start = max(c_min, front[0][0]) if front else c_max
    if start >= c_max:
        return 0.0  # zero below the cheapest point
    xs = [start, *(c for c, _ in front if start < c < c_max), c_max]
    ys = [float(np.interp(x, [c for c, _ in front], [q for _, q in front])) for x in xs]
    area = float(np.trapezoid(ys, xs))
    return area / (c_max - c_min)


def pgr(quality: float, weak: float, strong: float) -> float:
    if strong == weak:
        raise ValueError("PGR needs the strong and weak models' qualities to differ")
    return (quality - weak) / (strong - weak)


def _pgr_curve(
    shares: Sequence[float], qualities: Sequence[float], weak: float, strong: float
) -> tuple[list[float], list[float]]:
    pairs = sorted(
        {(0.0, 0.0), (1.0, 1.0)}
        | {(float(s), pgr(q, weak, strong)) for s, q in zip(shares, qualities, strict=True)}
    )
    merged: dict[float, float] = {}
    for share, value in pairs:  # one PGR per share: the best seen there
        merged[share] = max(value, merged.get(share, -np.inf))
    xs = sorted(merged)
    return xs, [merged[x] for x in xs]


def apgr(shares: Sequence[float], qualities: Sequence[float], weak: float, strong: float) -> float:
    """RouteLLM's APGR from points (share of calls to the strong model, quality)."""
    xs, ys = _pgr_curve(shares, qualities, weak, strong)
    return float(np.trapezoid(ys, xs))


def cpt(
    shares: Sequence[float], qualities: Sequence[float], weak: float, strong: float, level: float
) -> float:
    """RouteLLM's CPT(level): the least share of strong calls reaching PGR ``level``."""
    xs, ys = _pgr_curve(shares, qualities, weak, strong)
    if ys[0] >= level:
        return xs[0]
    for (x0, y0), (x1, y1) in pairwise(zip(xs, ys, strict=True)):
        if y0 < level <= y1:
            return x0 + (x1 - x0) * (level - y0) / (y1 - y0)
    return 1.0  # pragma: no cover (PGR is 1 at share 1)


def oracle(scores: Floats, costs: Floats) -> tuple[Floats, Floats]:
    """Per prompt: the best score and the cost of the cheapest model reaching it."""
    best = scores.max(axis=1)
    reaching = np.where(scores >= best[:, None], costs, np.inf)
    return best, reaching.min(axis=1)


def cheapest_reaching(points: dict[str, Point], quality: float) -> str | None:
    """The name of the cheapest point whose quality is at least ``quality``."""
    reaching = [(c, name) for name, (c, q) in points.items() if q >= quality]
    return min(reaching)[1] if reaching else None
