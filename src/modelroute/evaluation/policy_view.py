"""The policy an evaluation runs under: each model called by name, as the route would call it.

An evaluation measures each model, so routing must not pick: every request names its model.
A request naming a model normally gets the policy's defaults; here it gets the evaluated
route's retries, timeouts and output length instead, with the route's fallbacks only when
asked for (a fallback's answer would be scored as the model's otherwise), and none of the
route's limits (a cost ceiling must not keep a model out of its own measurement).
"""

from __future__ import annotations

import dataclasses

from modelroute.policy.compiled import Policy, Route, frozen_map, route_entries


def route_models(route: Route) -> list[str]:
    """The models a route may answer with (every cascade tier), in the route's order."""
    return [name for tier in route.tiers for name in tier]


def direct_as(route: Route, policy: Policy, model: str, fallbacks: bool) -> Route:
    """A request naming ``model``, executed as ``route`` would execute it."""
    tiers = ((model,),)
    kept = tuple(f for f in route.fallbacks if f != model) if fallbacks else ()
    return dataclasses.replace(
        route,
        name=model,
        aliases=(),
        match=None,
        max_latency_ms=None,
        max_cost_usd=None,
        min_quality=None,
        objective="declared_order",
        strategy="direct",
        tiers=tiers,
        fallbacks=kept,
        on_infeasible="reject",
        confidence=None,
        hedge_after_ms=None,
        scorer=None,
        entries=route_entries(model, tiers, kept, policy.models, cascade=False),
    )


def evaluation_policy(policy: Policy, route: Route, fallbacks: bool = False) -> Policy:
    """``policy`` with every model's direct requests run as ``route`` runs its own."""
    direct = {name: direct_as(route, policy, name, fallbacks) for name in policy.models}
    return dataclasses.replace(policy, direct=frozen_map(direct))
