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

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from modelroute.planner.affinity import affine
from modelroute.planner.constraints import (
    Terms,
    clears,
    compared_quality,
    meets_quality,
    passes,
    prior_below,
    unmet,
)
from modelroute.planner.context import RequestContext
from modelroute.planner.decision import Candidate, Decision, Estimate, Learned, Reason, Rejection
from modelroute.planner.estimate import measured, predicted
from modelroute.planner.order import (
    PLAIN_ORDER,
    TIER_ORDER,
    TierKey,
    learned_order,
    order_key,
    strongest_key,
)
from modelroute.planner.select import select_route
from modelroute.planner.stats import EMPTY_STATS, StatsSnapshot
from modelroute.planner.terms import request_terms
from modelroute.policy.compiled import Model, Policy, Route

# Built through tuple.__new__, as in estimate.py: one Estimate and one Candidate per candidate.
_tuple = tuple.__new__
_OVER_COST, _OVER_LATENCY = Reason.OVER_COST_CEILING, Reason.OVER_LATENCY_BUDGET
# A tier's candidates below min_quality, each with its rejection; the candidate is None where
# nothing would take it (neither a cascade's early tiers nor on_infeasible).
Failing = list[tuple[Candidate | None, Rejection]]


def _on_priors(cost: float, priors: tuple[Any, ...]) -> Estimate:
    """What ``measured()`` gives a model nothing was measured for: its cost, then its priors."""
    return _tuple(Estimate, (cost,) + priors)  # noqa: RUF005 (half the cost of unpacking)


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
        failing: list[Failing] = [[] for _ in range(count)]
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
                order: TierKey | Callable[[Candidate], Any] = learned_order(learned)
            else:
                order = (TIER_ORDER if cooling else PLAIN_ORDER)[route.objective]
            for tier_list in passing:
                if len(tier_list) > 1:
                    tier_list.sort(key=order)
        return [tier_list for tier_list in passing if tier_list]

    def sift(
        self, passing: list[list[Candidate]], failing: list[Failing]
    ) -> list[tuple[int, Model, Candidate]]:
        """One pass over the route's entries: each is estimated and checked with the request's
        terms read once (``estimate`` and ``passes``, inline), and goes to its tier's
        ``passing`` or ``failing`` list or to the rejections. An entry estimated from its priors
        alone gets its ``Estimate`` only when something keeps it (a candidate, ``reject``): a
        model turned down by the route's declared limits alone, or below min_quality where no
        one takes it, gets its rejections from its figures. Returns the entries that would
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
        for tier, model, fallback, binds, prior, key, priors in self.route.entries:
            name, prices = model.name, model.prices
            cost = (prompt * prices.input + output * prices.output) / 1e6
            if key in by_route or name in by_model:
                est = measured(model, cost, prior, key, min_rated, by_route, by_model)
                latency, quality = est[1], est[3]
            else:  # priors only: the estimate is built below when something keeps it
                est, latency, quality = None, priors[0], priors[2]
            if scores is not None and name in scores:
                est = predicted(est or _on_priors(cost, priors), scores[name])
                quality = est[3]
            cap = model.max_output_tokens
            if not (
                need <= model.context_window
                and (cap is None or asked is None or asked <= cap)
                and needs <= model.capabilities
                and name not in shut
            ):
                est = est or _on_priors(cost, priors)
                kept = self.reject(model, est, fallback, binds)
                if name in shut and self.only_circuit(model, est, binds):
                    cooling.append((tier, model, kept or Candidate(name, est, fallback)))
            elif (max_cost is None or cost <= max_cost) and (
                max_latency is None or latency <= max_latency
            ):
                if not by_mean:
                    est = est or _on_priors(cost, priors)
                    quality = compared_quality(est, compare)
                if min_q is None or (quality is not None and quality >= min_q):
                    est = est or _on_priors(cost, priors)
                    passing[tier].append(_tuple(Candidate, (name, est, fallback, ())))
                # Kept beside its rejection only for a cascade (its early tiers take it) or
                # on_infeasible (which may offer it).
                elif (keeps := self.relaxes or self.route.strategy == "cascade") or est:
                    est = est or _on_priors(cost, priors)
                    below = meets_quality(model, est, t)
                    assert below is not None
                    kept_low = _tuple(Candidate, (name, est, fallback, ())) if keeps else None
                    failing[tier].append((kept_low, below))
                else:  # meets_quality on the priors (no interval, so either comparison)
                    failing[tier].append((None, prior_below(name, quality, priors[3], min_q)))
            elif self.relaxes:
                est = est or _on_priors(cost, priors)
                self.reject(model, est, fallback, binds)
            else:  # turned down by its declared limits alone, on a route that never relaxes
                self.over_limits(model, est, cost, latency, quality, priors, binds)
        return cooling

    def over_limits(
        self,
        model: Model,
        est: Estimate | None,
        cost: float,
        latency: float,
        quality: float | None,
        priors: tuple[Any, ...],
        quality_binds: bool,
    ) -> None:
        """The rejections ``unmet()`` gives a model over the route's cost ceiling or latency
        budget, built from its figures (``est`` is None for a model on its priors alone)."""
        t, name, rejections = self.terms, model.name, self.rejections
        max_cost, max_latency, min_q = t.max_cost_usd, t.max_latency_ms, t.min_quality
        if max_cost is not None and cost > max_cost:
            rejections.append(_tuple(Rejection, (name, _OVER_COST, cost, max_cost, None)))
        if max_latency is not None and latency > max_latency:
            source = priors[1] if est is None else est[2]
            rejections.append(
                _tuple(Rejection, (name, _OVER_LATENCY, latency, max_latency, source))
            )
        if quality_binds and min_q is not None:
            if est is not None:
                below = meets_quality(model, est, t)
            elif quality is not None and quality >= min_q:
                below = None
            else:
                below = prior_below(name, quality, priors[3], min_q)
            if below is not None:
                rejections.append(below)

    def only_circuit(self, model: Model, est: Estimate, quality_binds: bool) -> bool:
        """Would ``model`` pass every check if its circuit were closed?"""
        t = self.terms
        if not passes(model, est, t._replace(open_circuits=frozenset())):
            return False
        min_q = t.min_quality
        if not quality_binds or min_q is None:
            return True
        return clears(est, min_q, t.quality_compare)

    def keep_probes(
        self,
        passing: list[list[Candidate]],
        failing: list[Failing],
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

    def reject_low(self, low: Failing) -> None:
        for candidate, rejection in low:
            if self.relaxes and candidate is not None:  # on_infeasible keeps every candidate
                self.nearly.append((candidate, [rejection]))
            self.rejections.append(rejection)

    def cascade_quality(self, passing: list[list[Candidate]], failing: list[Failing]) -> None:
        """min_quality binds the final tier; when that is emptied, the tier before it becomes
        final and the bar moves down with it. Earlier tiers answer to the confidence signal."""
        final = -1
        for index in range(len(passing) - 1, -1, -1):
            self.reject_low(failing[index])
            if passing[index]:
                final = index
                break
        for index in range(max(final, 0)):
            passing[index] += [c for c, _ in failing[index] if c is not None]  # all, in a cascade

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
                key=lambda pair: order_key(self.route.objective)(pair[0]),
            )
        elif action == "cheapest":
            picked = sorted(self.nearly, key=lambda p: (p[0].estimate.cost_usd, p[0].model))[:1]
        elif action == "strongest":
            picked = sorted(self.nearly, key=lambda p: strongest_key(p[0]))[:1]
        else:
            return [], None
        if not picked:
            return [], None
        offered = {c.model for c, _ in picked}
        self.rejections = [r for r in self.rejections if r.model not in offered]
        # A circuit probe offered this way stays a probe: its waived circuit_open is kept.
        return [c._replace(waived=(*c.waived, *r)) for c, r in picked], action


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
    terms, notes = request_terms(route, ctx, stats)
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
    # Decision's fields in order, built as the candidates are (its own __new__ takes them by
    # keyword, a Python call); no session affinity yet (``affine`` adds it).
    decision: Decision = _tuple(
        Decision,
        (
            route.name, route.strategy, route.objective, policy.hash, selected_by,
            tuple(map(tuple, tiers)), tuple(planner.rejections), terms.prompt_tokens,
            terms.output_tokens, terms.max_cost_usd, terms.max_latency_ms, terms.min_quality,
            relaxed, tuple(notes), seen, None,
        ),
    )  # fmt: skip
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
