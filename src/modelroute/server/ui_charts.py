"""The overview's charts as the data ``static/charts.js`` draws: shared time buckets, one list of
values per line, ``None`` where a value cannot be known (a gap, not a zero)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from modelroute.dashboard.views import Overview, Point, Series

MAX_LINES = 8  # lines per chart; the tables below the charts list every route and model

Metric = Callable[[Point], float | None]

_METRICS: dict[str, tuple[str, Metric]] = {
    "requests": ("count", lambda p: p.requests),
    "spend": ("usd", lambda p: p.spend_usd),
    "p50": ("ms", lambda p: p.p50_latency_ms),
    "p95": ("ms", lambda p: p.p95_latency_ms),
    "errors": ("ratio", lambda p: p.error_rate),
    "fallbacks": ("ratio", lambda p: p.fallback_rate),
}


def label(key: str | None, missing: str) -> str:
    return missing if key is None else key


def chart(
    chart_id: str, title: str, metric: str, buckets: Sequence[float], lines: Sequence[Series],
    missing: str,
) -> dict[str, Any]:  # fmt: skip
    unit, read = _METRICS[metric]
    return {
        "id": chart_id,
        "title": title,
        "unit": unit,
        "x": list(buckets),
        "series": [
            {"label": label(s.key, missing), "values": [read(p) for p in s.points]}
            for s in lines[:MAX_LINES]
        ],
    }


def overview_charts(view: Overview) -> list[dict[str, Any]]:
    b = view.buckets
    routes, models = view.by_route, view.by_model
    latency = chart("latency", "Latency, all requests", "p50", b, [view.total], "p50")
    latency["series"] += chart("p95", "", "p95", b, [view.total], "p95")["series"]
    latency["series"][0]["label"], latency["series"][1]["label"] = "p50", "p95"
    return [
        chart("volume-route", "Requests by route", "requests", b, routes, "(no route)"),
        chart("volume-model", "Requests by model", "requests", b, models, "(no model)"),
        chart("spend-route", "Spend by route", "spend", b, routes, "(no route)"),
        chart("spend-model", "Spend by model", "spend", b, models, "(no model)"),
        latency,
        chart("p95-route", "p95 latency by route", "p95", b, routes, "(no route)"),
        chart("errors-route", "Error rate by route", "errors", b, routes, "(no route)"),
        chart("fallbacks-route", "Fallback rate by route", "fallbacks", b, routes, "(no route)"),
    ]
