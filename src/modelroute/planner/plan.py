"""``plan(request, policy, stats, scores) -> Decision``: pure, deterministic, microseconds.

Candidates are checked against feasibility (context, capabilities, circuit) and the declared
constraints (cost ceiling, latency budget, min quality); survivors are ordered by the route's
objective into tiers; rejections keep their numbers. No I/O, no clock, no environment.

A learned route's ``scores`` (each model's predicted score for this prompt, computed by the
route's trained router outside the planner: ``modelroute.learned.decide``) stand as the
candidates' quality estimates (source ``predicted``): min_quality applies to them. Under the
route's ``threshold`` rule the cheapest candidate whose score clears the threshold goes first,
then the others by predicted score, highest first; under ``score_minus_cost`` the candidates
go by predicted score - lambda x estimated cost (USD), highest first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from modelroute.planner.affinity import affine
from modelroute.planner.constraints import Terms, compared_quality, meets_quality, unmet
from modelroute.planner.context import Limits, RequestContext
from modelroute.planner.decision import (
    FEASIBILITY,
    Candidate,
    Decision,
    Estimate,
    Learned,
    Reason,
    Rejection,
)
from modelroute.planner.select import select_route
from modelroute.planner.stats import EMPTY_STATS, ModelStats, StatsSnapshot
from modelroute.policy.compiled import LearnedRule, Model, Policy, Route

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
    if ctx.needs_responses:
        needs.append("responses")
    return frozenset(needs)


def estimate(model: Model, route_name: str, terms: Terms, stats: StatsSnapshot) -> Estimate:
    """Cost from the prices; latency (p95) measured if known, quality measured once enough
    distinct requests were rated (``terms.min_quality_samples``); else the priors."""
    prices = model.prices
    cost = (terms.prompt_tokens * prices.input + terms.output_tokens * prices.output) / 1e6
    return _measured(
        model,
        cost,
        model.quality.get(route_name),
        (route_name, model.name),
        terms.min_quality_samples,
        stats.by_route,
        stats.by_model,
    )


# A named tuple's own __new__ is a Python function; building through tuple.__new__ skips that
# frame (the planner builds one Estimate and one Candidate per candidate, per request).
_tuple = tuple.__new__
_NO_INTERVAL = (None, None, None, None)  # quality_low, quality_high, quality_sources, _version


def _measured(
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
    measured = by_route.get(key)
    latency = measured.latency_p95_ms if measured is not None else None
    if latency is None and by_model:
        overall = by_model.get(model.name)
        latency = overall.latency_p95_ms if overall is not None else None
    latency_source = "prior" if latency is None else "measured"
    if latency is None:
        latency = model.latency_p95_ms
    quality = None if measured is None else measured.quality
    rated = 0 if measured is None or quality is None else measured.quality_samples
    if measured is not None and quality is not None and rated >= min_rated:
        return _tuple(
            Estimate,
            (
                cost, latency, latency_source, quality, "measured", rated, measured.quality_low,
                measured.quality_high, measured.quality_sources, measured.quality_version,
            ),
        )  # fmt: skip
    source = "unknown" if prior is None else "prior"
    return _tuple(Estimate, (cost, latency, latency_source, prior, source, rated, *_NO_INTERVAL))


OrderKey = Callable[[Candidate], tuple[float, float, str]]


def _strongest_key(c: Candidate) -> tuple[float, float, str]:
    quality = c.estimate.quality
    return (-(quality if quality is not None else -_INF), c.estimate.cost_usd, c.model)


def _cheapest_key(c: Candidate) -> tuple[float, float, str]:
    return (c.estimate.cost_usd, c.estimate.latency_ms, c.model)


def _fastest_key(c: Candidate) -> tuple[float, float, str]:
    return (c.estimate.latency_ms, c.estimate.cost_usd, c.model)


_ORDER: dict[str, OrderKey] = {
    "min_cost": _cheapest_key,
    "min_latency": _fastest_key,
    "max_quality": _strongest_key,
    "declared_order": _cheapest_key,  # only used by on_infeasible=relax_latency
}

# The order inside a tier: fallbacks stay last, and circuit probes after them; then the
# objective's key, flattened into one tuple (one call per candidate, not two).
TierKey = Callable[[Candidate], tuple[bool, bool, float, float, str]]
_TIER_ORDER: dict[str, TierKey] = {
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
_TIER_ORDER["declared_order"] = _TIER_ORDER["min_cost"]
# The same orders for tiers without probes (no candidate waives anything yet), as
# attrgetters: a key per candidate with no Python call.
_PLAIN_ORDER: dict[str, TierKey | Callable[[Candidate], Any]] = {
    "min_cost": attrgetter("fallback", "estimate.cost_usd", "estimate.latency_ms", "model"),
    "min_latency": attrgetter("fallback", "estimate.latency_ms", "estimate.cost_usd", "model"),
    "max_quality": _TIER_ORDER["max_quality"],
}
_PLAIN_ORDER["declared_order"] = _PLAIN_ORDER["min_cost"]


def _order_key(objective: str) -> OrderKey:
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


def _learned_order(learned: LearnedRule) -> TierKey:
    if learned.rule == "score_minus_cost" and learned.lam is not None:
        return utility_key(learned.lam)
    return learned_key(learned.threshold)


def _passes(model: Model, est: Estimate, t: Terms) -> bool:
    """Fast path: every feasibility and budget check at once, with no objects built. The checks
    in constraints.py stay the definition; a property test holds the two together."""
    return (
        t.prompt_tokens + t.output_tokens <= model.context_window
        and (
            model.max_output_tokens is None
            or t.explicit_max_tokens is None
            or t.explicit_max_tokens <= model.max_output_tokens
        )
        and t.needs <= model.capabilities
        and model.name not in t.open_circuits
        and (t.max_cost_usd is None or est.cost_usd <= t.max_cost_usd)
        and (t.max_latency_ms is None or est.latency_ms <= t.max_latency_ms)
    )


def _clears(est: Estimate, min_quality: float, compare: str) -> bool:
    """Does the estimate clear min_quality (``constraints.meets_quality`` without building a
    rejection)?"""
    value = compared_quality(est, compare)
    return value is not None and value >= min_quality


def _predicted(est: Estimate, score: float) -> Estimate:
    """The estimate with a learned router's predicted score as its quality."""
    return _tuple(Estimate, (est[0], est[1], est[2], score, "predicted", 0, *_NO_INTERVAL))


class _Planner:
    """One planning pass; holds the per-request terms so helpers stay small."""

    def __init__(
        self,
        route: Route,
        terms: Terms,
        stats: StatsSnapshot,
        scores: Mapping[str, float] | None = None,
    ) -> None:
        self.route, self.terms, self.stats, self.scores = route, terms, stats, scores
        self.rejections: list[Rejection] = []
        self.nearly: list[tuple[Candidate, list[Rejection]]] = []  # failed declared limits only
        # Only on_infeasible reads ``nearly``: with "reject" it is not worth building.
        self.relaxes = route.on_infeasible != "reject"

    def tiers(self) -> list[list[Candidate]]:
        """Sort each entry into its tier, ``low`` (passes all but min_quality) or the
        rejections; then apply min_quality where it binds, and order each tier."""
        route = self.route
        count = len(route.tiers)
        passing: list[list[Candidate]] = [[] for _ in range(count)]
        failing: list[list[tuple[Candidate, Rejection]]] = [[] for _ in range(count)]
        cooling = self.sift(passing, failing)
        if cooling:
            self.keep_probes(passing, failing, cooling)
        if route.strategy == "cascade":
            self.cascade_quality(passing, failing)
        else:
            for tier_failing in failing:
                if tier_failing:
                    self.reject_low(tier_failing)
        if route.strategy != "fixed":
            learned = route.learned
            if self.scores is not None and learned is not None:
                order: TierKey | Callable[[Candidate], Any] = _learned_order(learned)
            else:
                order = (_TIER_ORDER if cooling else _PLAIN_ORDER)[route.objective]
            for tier_list in passing:
                if len(tier_list) > 1:
                    tier_list.sort(key=order)
        return [tier_list for tier_list in passing if tier_list]

    def sift(
        self, passing: list[list[Candidate]], failing: list[list[tuple[Candidate, Rejection]]]
    ) -> list[tuple[int, Model, Candidate]]:
        """One pass over the route's entries: each is estimated and checked with the request's
        terms read once (``estimate`` and ``_passes``, inline), and goes to its tier's
        ``passing`` or ``failing`` list or to the rejections. Returns the entries that would
        pass but for an open circuit. The property tests hold this loop to the definitions
        (``estimate``, the checks in constraints.py) entry by entry."""
        t, stats = self.terms, self.stats
        prompt, output = t.prompt_tokens, t.output_tokens
        need, asked, needs, shut = prompt + output, t.explicit_max_tokens, t.needs, t.open_circuits
        max_cost, max_latency, min_q = t.max_cost_usd, t.max_latency_ms, t.min_quality
        min_rated, by_route, by_model = t.min_quality_samples, stats.by_route, stats.by_model
        compare = t.quality_compare
        by_mean = compare != "lower_bound"  # then compared_quality is the estimate's quality
        cooling: list[tuple[int, Model, Candidate]] = []
        scores = self.scores
        for tier, model, fallback, binds, prior, key in self.route.entries:
            name, prices = model.name, model.prices
            cost = (prompt * prices.input + output * prices.output) / 1e6
            if key in by_route or name in by_model:
                est = _measured(model, cost, prior, key, min_rated, by_route, by_model)
            else:  # priors only: what _measured gives when nothing was measured
                source = "unknown" if prior is None else "prior"
                figures = (cost, model.latency_p95_ms, "prior", prior, source, 0, *_NO_INTERVAL)
                est = _tuple(Estimate, figures)
            if scores is not None and name in scores:
                est = _predicted(est, scores[name])
            cap = model.max_output_tokens
            if (
                need <= model.context_window
                and (cap is None or asked is None or asked <= cap)
                and needs <= model.capabilities
                and name not in shut
                and (max_cost is None or cost <= max_cost)
                and (max_latency is None or est[1] <= max_latency)  # latency_ms
            ):
                quality = est[3] if by_mean else compared_quality(est, compare)
                candidate = _tuple(Candidate, (name, est, fallback, ()))
                if min_q is None or (quality is not None and quality >= min_q):
                    passing[tier].append(candidate)
                else:
                    below = meets_quality(model, est, t)
                    assert below is not None
                    failing[tier].append((candidate, below))
            else:
                kept = self.reject(model, est, fallback, binds)
                if name in shut and self.only_circuit(model, est, binds):
                    cooling.append((tier, model, kept or Candidate(name, est, fallback)))
        return cooling

    def only_circuit(self, model: Model, est: Estimate, quality_binds: bool) -> bool:
        """Would ``model`` pass every check if its circuit were closed?"""
        t = self.terms
        if not _passes(model, est, t._replace(open_circuits=frozenset())):
            return False
        min_q = t.min_quality
        if not quality_binds or min_q is None:
            return True
        return _clears(est, min_q, t.quality_compare)

    def keep_probes(
        self,
        passing: list[list[Candidate]],
        failing: list[list[tuple[Candidate, Rejection]]],
        cooling: list[tuple[int, Model, Candidate]],
    ) -> None:
        """Open circuits may rule out at most the route's ``max_ejection_percent`` of the
        candidates that meet every other requirement (never all of them below 100): the
        least-bad open ones beyond that share stay, last, with ``circuit_open`` waived, and
        the engine sends each one probe. A route whose every model had a bad spell thus
        recovers at the first success instead of refusing everything for a whole cooldown,
        while a model that is down costs one request at a time. A probe below min_quality
        in a cascade's early tier waits with the other such models: it stays only while
        that tier is not the final one."""
        total = sum(len(tier) for tier in passing) + len(cooling)
        keep = len(cooling) - total * self.route.max_ejection_percent // 100
        if keep <= 0:
            return
        by_model = self.stats.by_model

        def badness(item: tuple[int, Model, Candidate]) -> tuple[bool, float]:
            measured = by_model.get(item[2].model)
            rate = measured.error_rate if measured is not None else None
            return (rate is None, rate or 0.0)

        kept = sorted(cooling, key=badness)[:keep]  # a stable sort: ties keep the route's order
        for tier, model, c in kept:
            probe = c._replace(waived=(Rejection(c.model, Reason.CIRCUIT_OPEN),))
            below = meets_quality(model, probe.estimate, self.terms)
            if below is None:
                passing[tier].append(probe)
            else:
                failing[tier].append((probe, below))
        names = {c.model for _, _, c in kept}
        self.rejections = [r for r in self.rejections if r.model not in names]

    def reject(
        self, model: Model, est: Estimate, fallback: bool, quality_binds: bool
    ) -> Candidate | None:
        """Record why ``model`` is turned down; returns its candidate if one was kept for
        ``on_infeasible``."""
        found, declared, quality = unmet(model, est, self.terms)
        if quality is not None and quality_binds:
            declared.append(quality)
        self.rejections += found
        self.rejections += declared
        if found or not self.relaxes:
            return None
        # A model offered by on_infeasible stands alone, so min_quality binds it.
        unmet_limits = declared if quality is None or quality_binds else [*declared, quality]
        candidate = Candidate(model.name, est, fallback)
        self.nearly.append((candidate, unmet_limits))
        return candidate

    def reject_low(self, low: list[tuple[Candidate, Rejection]]) -> None:
        for candidate, rejection in low:
            if self.relaxes:
                self.nearly.append((candidate, [rejection]))
            self.rejections.append(rejection)

    def cascade_quality(
        self, passing: list[list[Candidate]], failing: list[list[tuple[Candidate, Rejection]]]
    ) -> None:
        """min_quality binds the final tier; when that is emptied, the tier before it becomes
        final and the bar moves down with it. Earlier tiers answer to the confidence signal."""
        final = -1
        for index in range(len(passing) - 1, -1, -1):
            self.reject_low(failing[index])
            if passing[index]:
                final = index
                break
        for index in range(max(final, 0)):
            passing[index] += [c for c, _ in failing[index]]

    def relax(self) -> tuple[list[Candidate], str | None]:
        """``on_infeasible``: offer models that break only declared limits, saying which."""
        action = self.route.on_infeasible
        if action == "relax_latency":
            picked = sorted(
                (
                    (c, r)
                    for c, r in self.nearly
                    if all(x.reason is Reason.OVER_LATENCY_BUDGET for x in r)
                ),
                key=lambda pair: _order_key(self.route.objective)(pair[0]),
            )
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
        # A circuit probe offered this way stays a probe: its waived circuit_open is kept.
        return [c._replace(waived=(*c.waived, *r)) for c, r in picked], action


def _terms(route: Route, ctx: RequestContext, stats: StatsSnapshot) -> tuple[Terms, list[str]]:
    notes: list[str] = list(ctx.notes)
    lim = ctx.limits
    if lim.max_cost_usd is not None or lim.max_latency_ms is not None or lim.min_quality:
        notes += _looser_notes(route, lim)
    terms = Terms(
        prompt_tokens=ctx.prompt_tokens,
        output_tokens=ctx.max_output_tokens or route.output_tokens,
        explicit_max_tokens=ctx.max_output_tokens,
        needs=_needs(ctx),
        open_circuits=stats.open_circuits,
        max_cost_usd=_tighter_max(route.max_cost_usd, lim.max_cost_usd),
        max_latency_ms=_tighter_max(route.max_latency_ms, lim.max_latency_ms),
        min_quality=_tighter_min(route.min_quality, lim.min_quality),
        min_quality_samples=route.min_quality_samples,
        quality_compare=route.quality_compare,
    )
    return terms, notes


def _looser_notes(route: Route, lim: Limits) -> list[str]:
    notes = []
    for field, route_value, request_value, looser in (
        ("max_cost_usd", route.max_cost_usd, lim.max_cost_usd, _gt),
        ("max_latency_ms", route.max_latency_ms, lim.max_latency_ms, _gt),
        ("min_quality", route.min_quality, lim.min_quality, _lt),
    ):
        if request_value is None or route_value is None:
            continue
        if looser(request_value, route_value):
            notes.append(
                f"request {field}={request_value} is looser than the route's "
                f"{route_value}; the route's limit applies"
            )
    return notes


def _gt(a: float, b: float) -> bool:
    return a > b


def _lt(a: float, b: float) -> bool:
    return a < b


def plan(
    ctx: RequestContext,
    policy: Policy,
    stats: StatsSnapshot = EMPTY_STATS,
    scores: Mapping[str, float] | None = None,
) -> Decision:
    """Decide which models serve ``ctx``, in which order, and why the others do not.

    ``scores``: model -> predicted score for this request, from the selected learned route's
    router (``modelroute.learned.decide`` computes them); ignored by other routes."""
    route, selected_by = select_route(policy, ctx)
    if route is None:
        assert ctx.requested is not None
        route = policy.direct[ctx.requested]
    learned = route.learned
    if learned is None:
        scores = None
    terms, notes = _terms(route, ctx, stats)
    planner = _Planner(route, terms, stats, scores)
    tiers = planner.tiers()
    relaxed = None
    if not tiers:
        chosen, relaxed = planner.relax()
        tiers = [chosen] if chosen else []
    seen = None
    if learned is not None and scores is not None:
        listed = (n for tier in route.tiers for n in tier)
        seen = Learned(
            learned.file_hash,
            learned.kind,
            learned.threshold,
            learned.threshold_source,
            tuple((n, float(scores[n])) for n in listed if n in scores),
            learned.rule,
            learned.lam if learned.rule == "score_minus_cost" else None,
        )
    elif route.strategy == "learned":
        notes.append("no predicted scores (prompt text not given): ordered by the objective")
    decision = Decision(
        route=route.name,
        strategy=route.strategy,
        objective=route.objective,
        policy_hash=policy.hash,
        selected_by=selected_by,
        tiers=tuple(tuple(t) for t in tiers),
        rejections=tuple(planner.rejections),
        prompt_tokens=terms.prompt_tokens,
        output_tokens=terms.output_tokens,
        max_cost_usd=terms.max_cost_usd,
        max_latency_ms=terms.max_latency_ms,
        min_quality=terms.min_quality,
        relaxed=relaxed,
        notes=tuple(notes),
        learned=seen,
    )
    if route.affinity is not None:
        return affine(decision, route.affinity, ctx.pin)
    return decision


def consulted_stats(decision: Decision, stats: StatsSnapshot) -> StatsSnapshot:
    """The part of ``stats`` that ``plan`` read to reach ``decision``: each candidate's figures
    for the decision's route and model-wide, and whether its circuit was open. Every candidate
    is either offered or rejected, so the decision names them all; planning again on this part
    alone gives the same decision (a property test holds the two together)."""
    models = {c.model for tier in decision.tiers for c in tier}
    models.update(r.model for r in decision.rejections)
    route = decision.route
    by_route = {(route, m): s for m in models if (s := stats.by_route.get((route, m))) is not None}
    by_model = {m: s for m in models if (s := stats.by_model.get(m)) is not None}
    return StatsSnapshot(
        MappingProxyType(by_route),
        MappingProxyType(by_model),
        stats.open_circuits & models,
    )


def reasons_of(decision: Decision, model: str) -> Iterable[Rejection]:
    return (r for r in decision.rejections if r.model == model)


def is_feasibility(rejection: Rejection) -> bool:
    return rejection.reason in FEASIBILITY
