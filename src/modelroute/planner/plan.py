"""``plan(request, policy, stats) -> Decision``: pure, deterministic, microseconds.

Candidates are checked against feasibility (context, capabilities, circuit) and the declared
constraints (cost ceiling, latency budget, min quality); survivors are ordered by the route's
objective into tiers; rejections keep their numbers. No I/O, no clock, no environment.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from modelroute.planner.constraints import BUDGET_CHECKS, FEASIBILITY_CHECKS, Terms, meets_quality
from modelroute.planner.context import RequestContext
from modelroute.planner.decision import FEASIBILITY, Candidate, Decision, Estimate, Reason, Rejection
from modelroute.planner.select import select_route
from modelroute.planner.stats import EMPTY_STATS, StatsSnapshot
from modelroute.policy.compiled import Model, Policy, Route

_INF = float("inf")


def _tighter_max(route: float | None, request: float | None) -> float | None:
    if request is None:
        return route
    return request if route is None else min(route, request)


def _tighter_min(route: float | None, request: float | None) -> float | None:
    if request is None:
        return route
    return request if route is None else max(route, request)


def _needs(ctx: RequestContext) -> frozenset[str]:
    needs = []
    if ctx.has_tools:
        needs.append("tools")
    if ctx.has_images:
        needs.append("vision")
    if ctx.needs_json:
        needs.append("json_mode")
    if ctx.needs_logprobs:
        needs.append("logprobs")
    return frozenset(needs)


def estimate(model: Model, route_name: str, terms: Terms, stats: StatsSnapshot) -> Estimate:
    cost = model.prices.estimate(terms.prompt_tokens, terms.output_tokens)
    measured = stats.by_route.get((route_name, model.name))
    overall = stats.by_model.get(model.name)
    latency, latency_source = model.latency_p95_ms, "prior"
    for s in (measured, overall):
        if s is not None and s.latency_p95_ms is not None:
            latency, latency_source = s.latency_p95_ms, "measured"
            break
    if measured is not None and measured.quality is not None:
        return Estimate(cost, latency, latency_source, measured.quality, "measured")
    prior = model.quality.get(route_name)
    return Estimate(cost, latency, latency_source, prior, "unknown" if prior is None else "prior")


OrderKey = Callable[[Candidate], tuple[float, float, str]]


def _strongest_key(c: Candidate) -> tuple[float, float, str]:
    quality = c.estimate.quality
    return (-(quality if quality is not None else -_INF), c.estimate.cost_usd, c.model)


def _cheapest_key(c: Candidate) -> tuple[float, float, str]:
    return (c.estimate.cost_usd, c.estimate.latency_ms, c.model)


def _fastest_key(c: Candidate) -> tuple[float, float, str]:
    return (c.estimate.latency_ms, c.estimate.cost_usd, c.model)


_ORDER: dict[str, OrderKey] = {
    "min_cost": _cheapest_key, "min_latency": _fastest_key, "max_quality": _strongest_key,
    "declared_order": _cheapest_key,  # only used by on_infeasible=relax_latency
}


def _order_key(objective: str) -> OrderKey:
    return _ORDER[objective]


class _Planner:
    """One planning pass; holds the per-request terms so helpers stay small."""

    def __init__(self, policy: Policy, route: Route, terms: Terms, stats: StatsSnapshot) -> None:
        self.policy, self.route, self.terms, self.stats = policy, route, terms, stats
        self.rejections: list[Rejection] = []
        self.placed: set[str] = set()
        self.nearly: list[tuple[Candidate, list[Rejection]]] = []  # failed declared limits only

    def evaluate(self, name: str, quality_binds: bool, fallback: bool
                 ) -> tuple[Candidate, Rejection | None] | None:
        """A candidate that passes feasibility and budgets, with its quality verdict apart:
        in a cascade, min_quality binds whichever tier ends up last."""
        if name in self.placed:
            return None  # a model is offered once, at its first position
        self.placed.add(name)
        model = self.policy.models[name]
        est = estimate(model, self.route.name, self.terms, self.stats)
        found = [r for check in FEASIBILITY_CHECKS if (r := check(model, est, self.terms))]
        declared = [r for check in BUDGET_CHECKS if (r := check(model, est, self.terms))]
        quality = meets_quality(model, est, self.terms)
        candidate = Candidate(name, est, fallback)
        if not found and not declared:
            return candidate, quality
        if quality is not None and quality_binds:
            declared.append(quality)
        if not found:
            # A model offered by on_infeasible stands alone, so min_quality binds it.
            unmet = declared if quality is None or quality_binds else [*declared, quality]
            self.nearly.append((candidate, unmet))
        self.rejections.extend(found + declared)
        return None

    def tiers(self) -> list[list[Candidate]]:
        route = self.route
        cascade = route.strategy == "cascade"
        last = len(route.tiers) - 1
        evaluated: list[list[tuple[Candidate, Rejection | None]]] = []
        for index, names in enumerate(route.tiers):
            binds = not cascade or index == last
            tier = [e for n in names if (e := self.evaluate(n, binds, False))]
            if index == last:
                tier += [e for n in route.fallbacks if (e := self.evaluate(n, True, True))]
            evaluated.append(tier)
        # min_quality binds every tier, or only the final one of a cascade; when a cascade's
        # final tier is emptied, the tier before it becomes final and the bar moves down.
        binding = range(len(evaluated) - 1, -1, -1) if cascade else range(len(evaluated))
        for index in binding:
            passing = [c for c, q in evaluated[index] if q is None]
            for c, q in evaluated[index]:
                if q is not None:
                    self.nearly.append((c, [q]))
                    self.rejections.append(q)
            evaluated[index] = [(c, None) for c in passing]
            if cascade and passing:
                break
        tiers = []
        for tier_pairs in evaluated:
            tier = [c for c, _ in tier_pairs]
            if route.strategy != "fixed":
                key = _order_key(route.objective)
                tier.sort(key=lambda c: (c.fallback, key(c)))  # fallbacks stay last
            if tier:
                tiers.append(tier)
        return tiers

    def relax(self) -> tuple[list[Candidate], str | None]:
        """``on_infeasible``: offer models that break only declared limits, saying which."""
        action = self.route.on_infeasible
        if action == "relax_latency":
            picked = sorted(
                ((c, r) for c, r in self.nearly
                 if all(x.reason is Reason.OVER_LATENCY_BUDGET for x in r)),
                key=lambda pair: _order_key(self.route.objective)(pair[0]))
        elif action == "cheapest":
            picked = sorted(self.nearly, key=lambda p: (p[0].estimate.cost_usd, p[0].model))[:1]
        elif action == "strongest":
            picked = sorted(self.nearly, key=lambda p: _strongest_key(p[0]))[:1]
        else:
            return [], None
        if not picked:
            return [], None
        offered = {c.model for c, _ in picked}
        self.rejections = [r for r in self.rejections if r.model not in offered]
        return [Candidate(c.model, c.estimate, c.fallback, tuple(r)) for c, r in picked], action


def _terms(policy: Policy, route: Route, ctx: RequestContext,
           stats: StatsSnapshot) -> tuple[Terms, list[str]]:
    notes: list[str] = []
    lim = ctx.limits
    for field, route_value, request_value, looser in (
        ("max_cost_usd", route.max_cost_usd, lim.max_cost_usd, _gt),
        ("max_latency_ms", route.max_latency_ms, lim.max_latency_ms, _gt),
        ("min_quality", route.min_quality, lim.min_quality, _lt),
    ):
        if request_value is not None and route_value is not None and looser(request_value,
                                                                             route_value):
            notes.append(f"request {field}={request_value} is looser than the route's "
                         f"{route_value}; the route's limit applies")
    terms = Terms(
        prompt_tokens=ctx.prompt_tokens,
        output_tokens=ctx.max_output_tokens or route.output_tokens,
        explicit_max_tokens=ctx.max_output_tokens,
        needs=_needs(ctx),
        open_circuits=stats.open_circuits,
        max_cost_usd=_tighter_max(route.max_cost_usd, lim.max_cost_usd),
        max_latency_ms=_tighter_max(route.max_latency_ms, lim.max_latency_ms),
        min_quality=_tighter_min(route.min_quality, lim.min_quality),
    )
    return terms, notes


def _gt(a: float, b: float) -> bool:
    return a > b


def _lt(a: float, b: float) -> bool:
    return a < b


def _direct_route(policy: Policy, model: str) -> Route:
    """A request naming a model: feasibility still checked, no declared limits of a route."""
    from modelroute.policy.compiled import RetryPolicy, TimeoutPolicy

    return Route(
        name=model, aliases=(), match=None, max_latency_ms=None, max_cost_usd=None,
        min_quality=None, objective="declared_order", strategy="direct", tiers=((model,),),
        fallbacks=(), retries=RetryPolicy(0, 0, 0, frozenset()),
        timeouts=TimeoutPolicy(60_000, 60_000), output_tokens=256, on_infeasible="reject",
        confidence=None, hedge_after_ms=None, scorer=None,
    )


def plan(ctx: RequestContext, policy: Policy, stats: StatsSnapshot = EMPTY_STATS,
         direct_route: Route | None = None) -> Decision:
    """Decide which models serve ``ctx``, in which order, and why the others do not."""
    route, selected_by = select_route(policy, ctx)
    if route is None:
        assert ctx.requested is not None
        route = direct_route or _direct_route(policy, ctx.requested)
    terms, notes = _terms(policy, route, ctx, stats)
    planner = _Planner(policy, route, terms, stats)
    tiers = planner.tiers()
    relaxed = None
    if not tiers:
        chosen, relaxed = planner.relax()
        tiers = [chosen] if chosen else []
    if route.strategy == "learned":
        notes.append("learned scorer not yet available; ordered by the route's objective")
    return Decision(
        route=route.name, strategy=route.strategy, objective=route.objective,
        policy_hash=policy.hash, selected_by=selected_by,
        tiers=tuple(tuple(t) for t in tiers), rejections=tuple(planner.rejections),
        prompt_tokens=terms.prompt_tokens, output_tokens=terms.output_tokens,
        max_cost_usd=terms.max_cost_usd, max_latency_ms=terms.max_latency_ms,
        min_quality=terms.min_quality, relaxed=relaxed, notes=tuple(notes),
    )


def reasons_of(decision: Decision, model: str) -> Iterable[Rejection]:
    return (r for r in decision.rejections if r.model == model)


def is_feasibility(rejection: Rejection) -> bool:
    return rejection.reason in FEASIBILITY
