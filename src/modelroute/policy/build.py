"""From a schema-valid ``PolicySpec`` to a compiled ``Policy``: cross-checks and lookups.

Every problem is collected, never raised one at a time, so a user fixes a file in one pass.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING

from modelroute.errors import Problem
from modelroute.policy import compiled as c
from modelroute.policy.build_checks import suggest
from modelroute.policy.build_models import ModelChecks, is_pinned
from modelroute.policy.build_routes import RouteChecks
from modelroute.policy.hashing import policy_hash
from modelroute.policy.rules import retry_policy, timeout_policy
from modelroute.policy.schema import PolicySpec
from modelroute.policy.source import Source
from modelroute.request_fields import ROUTING_METADATA_KEYS

if TYPE_CHECKING:
    from modelroute.learned.format import LoadedRouter

__all__ = ["build_policy", "is_pinned"]


class _Builder(ModelChecks, RouteChecks):
    """One build: the model checks and the route checks over the same problems."""


def _routing_metadata(spec: PolicySpec) -> frozenset[str]:
    """Every metadata key routing reads: the fixed ones and those any route matches on."""
    matched = {key for route in spec.routes.values() if route.match for key in route.match.metadata}
    return ROUTING_METADATA_KEYS | matched


def _direct_route(spec: PolicySpec, model: c.Model) -> c.Route:
    """A request naming a model: feasibility is still checked; no route's limits apply."""
    d = spec.defaults
    return c.Route(
        name=model.name,
        aliases=(),
        match=None,
        max_latency_ms=None,
        max_cost_usd=None,
        min_quality=None,
        objective="declared_order",
        strategy="direct",
        tiers=((model.name,),),
        fallbacks=(),
        retries=retry_policy(d.retries),
        timeouts=timeout_policy(d.timeouts),
        output_tokens=d.output_tokens,
        max_ejection_percent=d.circuit_breaker.max_ejection_percent,
        on_infeasible="reject",
        confidence=None,
        hedge_after_ms=None,
        scorer=None,
        min_quality_samples=d.quality.min_samples,
        entries=(c.entry(0, model, False, True, model.name),),
        quality_compare=d.quality.compare.value,  # a request may still set min_quality
    )


def build_policy(
    spec: PolicySpec,
    source: Source,
    provider_kinds: Collection[str],
    routers: Mapping[str, LoadedRouter] | None = None,
) -> tuple[c.Policy | None, list[Problem]]:
    """``provider_kinds``: the kinds a model's ``provider:`` may name (built-in, installed,
    or passed in code; the caller knows which). ``routers``: each learned route's router
    file, read by the loader."""
    routers = routers or {}
    b = _Builder(spec, source, provider_kinds, routers)
    models = {}
    routing_metadata = _routing_metadata(spec)
    for name, model_spec in spec.models.items():
        model = b.model(name, model_spec, routing_metadata)
        if model is not None:
            models[name] = model
    routes = {name: b.route(name, route, models) for name, route in spec.routes.items()}
    names = b.names(routes)
    default = spec.defaults.route
    if default is not None and default not in names:
        b.error(
            ("defaults", "route"),
            f"default route {default!r} is not a route",
            suggest(default, names),
        )
    for name, model_spec in spec.models.items():
        for task in model_spec.quality:
            if task not in names:
                b.warn(
                    ("models", name, "quality", task),
                    f"quality prior for {task!r}, which is not a route or alias",
                    suggest(task, names),
                )
    if any(p.severity == "error" for p in b.problems):
        return None, b.problems
    policy = c.Policy(
        models=c.frozen_map(models),
        routes=c.frozen_map(routes),
        names=c.frozen_map(names),
        direct=c.frozen_map({name: _direct_route(spec, m) for name, m in models.items()}),
        matchers=tuple(r for r in routes.values() if r.match is not None),
        default_route=default if default is None else names[default].name,
        hash=policy_hash(spec, models, routers),
        version=spec.version,
        source=source.file,
        warnings=tuple(b.problems),
        simulator=None
        if spec.simulator is None
        else (spec.simulator.config, spec.simulator.host, spec.simulator.port),
    )
    return policy, b.problems
