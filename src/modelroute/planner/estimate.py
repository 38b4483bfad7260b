"""A candidate's estimate for one request: cost from the prices; latency (p95) measured if
known, else the model's prior; quality measured once enough distinct requests were rated,
else the route's prior; or a learned router's predicted score. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from modelroute.planner.constraints import Terms
from modelroute.planner.decision import Estimate
from modelroute.planner.stats import ModelStats, StatsSnapshot
from modelroute.policy.compiled import Model

# A named tuple's own __new__ is a Python function; building through tuple.__new__ skips that
# frame (the planner builds one Estimate and one Candidate per candidate, per request).
_tuple = tuple.__new__
NO_INTERVAL = (None, None, None, None)  # quality_low, quality_high, quality_sources, _version


def estimate(model: Model, route_name: str, terms: Terms, stats: StatsSnapshot) -> Estimate:
    """Cost from the prices; latency (p95) measured if known, quality measured once enough
    distinct requests were rated (``terms.min_quality_samples``); else the priors."""
    prices = model.prices
    cost = (terms.prompt_tokens * prices.input + terms.output_tokens * prices.output) / 1e6
    return measured(
        model,
        cost,
        model.quality.get(route_name),
        (route_name, model.name),
        terms.min_quality_samples,
        stats.by_route,
        stats.by_model,
    )


def measured(
    model: Model,
    cost: float,
    prior: float | None,
    key: tuple[str, str],
    min_rated: int,
    by_route: Mapping[tuple[str, str], ModelStats],
    by_model: Mapping[str, ModelStats],
) -> Estimate:
    """The rest of ``estimate`` once the cost is known, with the route's quality prior and
    statistics key looked up already."""
    found = by_route.get(key)
    latency = found.latency_p95_ms if found is not None else None
    if latency is None and by_model:
        overall = by_model.get(model.name)
        latency = overall.latency_p95_ms if overall is not None else None
    latency_source = "prior" if latency is None else "measured"
    if latency is None:
        latency = model.latency_p95_ms
    quality = None if found is None else found.quality
    rated = 0 if found is None or quality is None else found.quality_samples
    if found is not None and quality is not None and rated >= min_rated:
        return _tuple(
            Estimate,
            (
                cost, latency, latency_source, quality, "measured", rated, found.quality_low,
                found.quality_high, found.quality_sources, found.quality_version,
            ),
        )  # fmt: skip
    source = "unknown" if prior is None else "prior"
    return _tuple(Estimate, (cost, latency, latency_source, prior, source, rated, *NO_INTERVAL))


def predicted(est: Estimate, score: float) -> Estimate:
    """The estimate with a learned router's predicted score as its quality."""
    return _tuple(Estimate, (est[0], est[1], est[2], score, "predicted", 0, *NO_INTERVAL))
