"""Routing drift: a route whose chosen model no longer meets the route's ``min_quality``.

The chosen models are those the route tried first for requests in the current window. Each
is measured as the planner measures it: the outcome aggregate of its current version on
that route (``outcomes/aggregate.py``), with its interval. A model meets the bar when the
interval's lower bound does; one whose lower bound is below it, on at least the route's
``min_samples`` outcomes, is an alert. Fewer outcomes than that is "not enough data".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from modelroute.analysis.drift import queries
from modelroute.analysis.drift.findings import Finding
from modelroute.policy import Policy
from modelroute.records.stores.base import Store


def chosen(rows: Iterable[queries.GroupRow]) -> Counter[tuple[str, str]]:
    """(route, model tried first) -> requests in the current window."""
    found: Counter[tuple[str, str]] = Counter()
    for r in rows:
        if r.route is not None and r.first_model is not None and r.n_current:
            found[(r.route, r.first_model)] += r.n_current
    return found


async def routing_findings(
    store: Store, rows: Iterable[queries.GroupRow], policy: Policy
) -> list[Finding]:
    routes = {name: r for name, r in policy.routes.items() if r.min_quality is not None}
    first = [(route, model) for route, model in sorted(chosen(rows)) if route in routes]
    if not first:
        return []
    from modelroute.outcomes.aggregate import current, load

    measured = current(await load(store, "route"))
    out = []
    for route, model in first:
        spec = routes[route]
        bar = float(spec.min_quality or 0.0)
        agg = measured.get((route, model))
        subject: dict[str, str | None] = {"route": route, "model": model}
        if agg is None or agg.n < spec.min_quality_samples or agg.interval.low is None:
            n = 0 if agg is None else agg.n
            out.append(
                Finding(
                    "routing",
                    subject,
                    f"not enough data: {n} outcomes of {model} on {route} "
                    f"(needs {spec.min_quality_samples})",
                    status="not_enough_data",
                    n_current=n,
                )
            )
            continue
        low = agg.interval.low
        subject["version"] = agg.version
        verdict = "below" if low < bar else "meets"
        out.append(
            Finding(
                "routing",
                subject,
                f"route {route}: {model} measured {agg.describe()}, lower bound {low:.3f} "
                f"{verdict} min_quality {bar}",
                status="alert" if low < bar else "ok",
                n_current=agg.n,
                effect={"shortfall": bar - low},
                evidence={"min_quality": bar, "measured": agg.to_dict()},
            )
        )
    return out
