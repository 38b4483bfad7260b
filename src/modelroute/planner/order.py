"""How candidates are ordered: by the route's objective (min_cost, min_latency, max_quality,
declared_order) or, on a learned route with predicted scores, by its rule (``threshold`` or
``score_minus_cost``). Inside a tier fallbacks stay last, and circuit probes after them."""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import Any

from modelroute.planner.decision import Candidate
from modelroute.policy.compiled import LearnedRule

_INF = float("inf")

OrderKey = Callable[[Candidate], tuple[float, float, str]]


def strongest_key(c: Candidate) -> tuple[float, float, str]:
    quality = c.estimate.quality
    return (-(quality if quality is not None else -_INF), c.estimate.cost_usd, c.model)


def _cheapest_key(c: Candidate) -> tuple[float, float, str]:
    return (c.estimate.cost_usd, c.estimate.latency_ms, c.model)


def _fastest_key(c: Candidate) -> tuple[float, float, str]:
    return (c.estimate.latency_ms, c.estimate.cost_usd, c.model)


_ORDER: dict[str, OrderKey] = {
    "min_cost": _cheapest_key,
    "min_latency": _fastest_key,
    "max_quality": strongest_key,
    "declared_order": _cheapest_key,  # only used by on_infeasible=relax_latency
}

# The order inside a tier: fallbacks stay last, and circuit probes after them; then the
# objective's key, flattened into one tuple (one call per candidate, not two).
TierKey = Callable[[Candidate], tuple[bool, bool, float, float, str]]
TIER_ORDER: dict[str, TierKey] = {
    "min_cost": lambda c: (
        bool(c.waived), c.fallback, c.estimate.cost_usd, c.estimate.latency_ms, c.model
    ),
    "min_latency": lambda c: (
        bool(c.waived), c.fallback, c.estimate.latency_ms, c.estimate.cost_usd, c.model
    ),
    "max_quality": lambda c: (
        bool(c.waived),
        c.fallback,
        -(c.estimate.quality if c.estimate.quality is not None else -_INF),
        c.estimate.cost_usd,
        c.model,
    ),
}  # fmt: skip
TIER_ORDER["declared_order"] = TIER_ORDER["min_cost"]
# The same orders for tiers without probes (no candidate waives anything yet), as
# attrgetters: a key per candidate with no Python call.
PLAIN_ORDER: dict[str, TierKey | Callable[[Candidate], Any]] = {
    "min_cost": attrgetter("fallback", "estimate.cost_usd", "estimate.latency_ms", "model"),
    "min_latency": attrgetter("fallback", "estimate.latency_ms", "estimate.cost_usd", "model"),
    "max_quality": TIER_ORDER["max_quality"],
}
PLAIN_ORDER["declared_order"] = PLAIN_ORDER["min_cost"]


def order_key(objective: str) -> OrderKey:
    return _ORDER[objective]


def learned_key(threshold: float) -> TierKey:
    """A learned route's order inside a tier: fallbacks and probes last; then the candidates
    whose predicted score clears ``threshold``, cheapest first; then the rest, highest
    predicted score first."""

    def key(c: Candidate) -> tuple[bool, bool, float, float, str]:
        q = c.estimate.quality
        clears = q is not None and q >= threshold
        rank = c.estimate.cost_usd if clears else -(q if q is not None else -_INF)
        return (bool(c.waived), c.fallback, 0.0 if clears else 1.0, rank, c.model)

    return key


def utility_key(lam: float) -> TierKey:
    """A learned route's order under ``score_minus_cost``: fallbacks and probes last; then by
    predicted score - ``lam`` x estimated cost, highest first (the cheaper among equals)."""

    def key(c: Candidate) -> tuple[bool, bool, float, float, str]:
        q = c.estimate.quality
        cost = c.estimate.cost_usd
        utility = (q if q is not None else -_INF) - lam * cost
        return (bool(c.waived), c.fallback, -utility, cost, c.model)

    return key


def learned_order(learned: LearnedRule) -> TierKey:
    if learned.rule == "score_minus_cost" and learned.lam is not None:
        return utility_key(learned.lam)
    return learned_key(learned.threshold)
