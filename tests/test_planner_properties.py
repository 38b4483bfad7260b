"""Properties of ``plan`` over generated policies, requests and statistics."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from modelroute.planner import (
    ModelStats,
    Reason,
    RequestContext,
    StatsSnapshot,
    consulted_stats,
    plan,
)
from modelroute.planner.constraints import BUDGET_CHECKS, FEASIBILITY_CHECKS, Terms, meets_quality
from modelroute.planner.context import Limits
from modelroute.planner.estimate import estimate
from modelroute.policy import Policy, load_policy_dict

from .policies import model

NAMES = ["m0", "m1", "m2", "m3", "m4", "m5"]
CAPS = ["tools", "json_mode", "vision", "logprobs"]

maybe = st.none() | st.floats(min_value=1e-6, max_value=1.0)


@st.composite
def policies(draw: st.DrawFn) -> Policy:
    names = draw(st.lists(st.sampled_from(NAMES), min_size=1, max_size=6, unique=True))
    models = {}
    for name in names:
        p50 = draw(st.floats(10, 5000))
        quality = draw(st.none() | st.floats(0, 1))
        models[name] = model(
            p50=p50,
            p95=p50 * draw(st.floats(1, 4)),
            inp=draw(st.floats(0, 20)),
            out=draw(st.floats(0, 60)),
            ctx=draw(st.integers(500, 200_000)),
            caps=[*draw(st.lists(st.sampled_from(CAPS), unique=True)), "logprobs"],
            quality=None if quality is None else {"r": quality},
        )
    kind = draw(st.sampled_from(["fixed", "cheapest_qualified", "cascade"]))
    order = draw(st.permutations(names))
    route: dict[str, Any] = {
        "constraints": {
            "max_cost_usd": draw(maybe),
            "min_quality": draw(st.none() | st.floats(0, 1)),
            "max_latency_ms": draw(st.none() | st.floats(10, 20_000)),
        },
        "on_infeasible": draw(
            st.sampled_from(["reject", "cheapest", "strongest", "relax_latency"])
        ),
        "fallbacks": draw(st.lists(st.sampled_from(names), max_size=2, unique=True)),
    }
    if kind == "cascade" and len(order) >= 2:
        cut = draw(st.integers(1, len(order) - 1))
        route["strategy"] = {
            "kind": "cascade",
            "tiers": [order[:cut], order[cut:]],
            "confidence": {"signal": "logprobs", "threshold": 0.8},
        }
    elif kind == "fixed":
        route["strategy"] = {"kind": "fixed", "models": order}
    else:
        route["strategy"] = {"kind": "cheapest_qualified", "models": order}
        route["objective"] = draw(st.sampled_from(["min_cost", "min_latency", "max_quality"]))
    compare = draw(st.sampled_from([None, "mean", "lower_bound"]))
    if compare is not None:
        route["quality"] = {"compare": compare}
    return load_policy_dict({"models": models, "routes": {"r": route}})


requests = st.builds(
    RequestContext,
    requested=st.just("r"),
    prompt_tokens=st.integers(0, 150_000),
    max_output_tokens=st.none() | st.integers(1, 8000),
    has_tools=st.booleans(),
    has_images=st.booleans(),
    needs_json=st.booleans(),
    needs_logprobs=st.booleans(),
    # What features.py lets through: non-negative numbers, no NaN, quality within [0, 1].
    limits=st.builds(
        Limits,
        max_cost_usd=st.none() | st.floats(0, 10),
        max_latency_ms=st.none() | st.floats(0, 30_000) | st.just(float("inf")),
        min_quality=st.none() | st.floats(0, 1),
    ),
)


@st.composite
def measured_quality(draw: st.DrawFn) -> ModelStats:
    """A route's measured quality: a mean, or a mean with its interval (from outcomes)."""
    quality = draw(st.none() | st.floats(0, 1))
    rated = draw(st.integers(0, 60))
    if quality is None or not draw(st.booleans()):
        return ModelStats(quality=quality, quality_samples=rated)
    low = draw(st.floats(0, quality))
    high = draw(st.floats(quality, 1))
    return ModelStats(
        quality=quality,
        quality_samples=rated,
        quality_low=low,
        quality_high=high,
        quality_sources=draw(st.sampled_from(["eval", "eval+shadow", "feedback"])),
        quality_version=draw(st.sampled_from(["v1", "v2"])),
    )


@st.composite
def snapshots(draw: st.DrawFn) -> StatsSnapshot:
    by_model = draw(
        st.dictionaries(
            st.sampled_from(NAMES),
            st.builds(ModelStats, latency_p95_ms=st.none() | st.floats(1, 20_000)),
            max_size=3,
        )
    )
    by_route = draw(
        st.dictionaries(
            st.tuples(st.just("r"), st.sampled_from(NAMES)),
            measured_quality(),
            max_size=3,
        )
    )
    circuits = draw(st.frozensets(st.sampled_from(NAMES), max_size=2))
    return StatsSnapshot(by_route=by_route, by_model=by_model, open_circuits=circuits)


def _candidates(policy: Policy) -> set[str]:
    route = policy.routes["r"]
    return {m for tier in route.tiers for m in tier} | set(route.fallbacks)


def _terms(policy: Policy, ctx: RequestContext, decision: Any) -> Terms:
    needs = {
        c
        for c, on in (
            ("tools", ctx.has_tools),
            ("vision", ctx.has_images),
            ("json_mode", ctx.needs_json),
            ("logprobs", ctx.needs_logprobs),
        )
        if on
    }
    return Terms(
        decision.prompt_tokens,
        decision.output_tokens,
        ctx.max_output_tokens,
        frozenset(needs),
        frozenset(),
        decision.max_cost_usd,
        decision.max_latency_ms,
        decision.min_quality,
        policy.routes["r"].min_quality_samples,
        policy.routes["r"].quality_compare,
    )


@settings(max_examples=300, deadline=None)
@given(policies(), requests, snapshots())
def test_steps_and_rejections_partition_the_candidates(
    policy: Policy, ctx: RequestContext, stats: StatsSnapshot
) -> None:
    d = plan(ctx, policy, stats)
    offered = list(d.order)
    rejected = {r.model for r in d.rejections}
    assert len(offered) == len(set(offered)), "a model is offered once"
    assert not set(offered) & rejected
    assert set(offered) | rejected == _candidates(policy)


@settings(max_examples=300, deadline=None)
@given(policies(), requests, snapshots())
def test_every_step_satisfies_every_constraint_it_does_not_declare_waived(
    policy: Policy, ctx: RequestContext, stats: StatsSnapshot
) -> None:
    d = plan(ctx, policy, stats)
    terms = _terms(policy, ctx, d)._replace(open_circuits=stats.open_circuits)
    last = len(d.tiers) - 1
    for index, tier in enumerate(d.tiers):
        for c in tier:
            m = policy.models[c.model]
            est = estimate(m, "r", terms, stats)
            unfit = {r.reason for check in FEASIBILITY_CHECKS if (r := check(m, est, terms))}
            # Only a probe the ejection cap kept may have an open circuit, and it says so.
            assert unfit == ({Reason.CIRCUIT_OPEN} if c.probe else set())
            found = {r.reason for check in BUDGET_CHECKS if (r := check(m, est, terms))}
            cascade = policy.routes["r"].strategy == "cascade"
            if (index == last or not cascade) and (q := meets_quality(m, est, terms)):
                found.add(q.reason)
            relaxed = {w.reason for w in c.waived} - {Reason.CIRCUIT_OPEN}
            assert found == relaxed
            assert bool(relaxed) == (d.relaxed is not None)


@settings(max_examples=200, deadline=None)
@given(
    policies(),
    requests,
    snapshots(),
    st.floats(0.01, 1.0),
    st.sampled_from(["max_cost_usd", "max_latency_ms", "min_quality"]),
)
def test_tightening_a_constraint_never_adds_a_step(
    policy: Policy, ctx: RequestContext, stats: StatsSnapshot, factor: float, which: str
) -> None:
    route = policy.routes["r"]
    loose = plan(ctx, policy, stats)
    current = getattr(route, which)
    if which == "min_quality":
        tighter = 1 - (1 - (current or 0)) * factor
    else:
        tighter = (current if current is not None else 1e6) * factor
    tight_policy = replace(
        policy,
        routes={"r": replace(route, **{which: tighter})},
        names={"r": replace(route, **{which: tighter})},
    )
    tight = plan(ctx, tight_policy, stats)
    if tight.relaxed is None:
        # Steps that meet every constraint: a subset of what the looser route offered (but
        # for probes of open circuits: fewer healthy candidates may leave room for more).
        assert {c.model for t in tight.tiers for c in t if not c.probe} <= set(loose.order)
        if tight.order:
            assert loose.relaxed is None


@settings(max_examples=100, deadline=None)
@given(policies(), requests, snapshots())
def test_same_inputs_same_decision(
    policy: Policy, ctx: RequestContext, stats: StatsSnapshot
) -> None:
    assert plan(ctx, policy, stats) == plan(ctx, policy, stats)


@settings(max_examples=300, deadline=None)
@given(policies(), requests, snapshots())
def test_planning_on_the_consulted_stats_alone_gives_the_same_decision(
    policy: Policy, ctx: RequestContext, stats: StatsSnapshot
) -> None:
    # What a record keeps of the statistics is enough to replay its decision.
    decision = plan(ctx, policy, stats)
    narrowed = consulted_stats(decision, stats)
    assert plan(ctx, policy, narrowed) == decision
    assert consulted_stats(decision, narrowed) == narrowed
    assert set(narrowed.by_model) <= set(stats.by_model)


@st.composite
def intervals_for(draw: st.DrawFn, policy: Policy) -> StatsSnapshot:
    """Measured quality with an interval, enough of it to count, for every candidate."""
    by_route = {}
    for name in sorted(_candidates(policy)):
        quality = draw(st.floats(0, 1))
        by_route[("r", name)] = ModelStats(
            quality=quality,
            quality_samples=policy.routes["r"].min_quality_samples,
            quality_low=draw(st.floats(0, quality)),
            quality_high=draw(st.floats(quality, 1)),
            quality_sources="eval",
            quality_version="v1",
        )
    return StatsSnapshot(by_route=by_route)


@st.composite
def lower_bound_cases(draw: st.DrawFn) -> tuple[Policy, RequestContext, StatsSnapshot]:
    policy = draw(policies())
    return policy, draw(requests), draw(intervals_for(policy) | snapshots())


@settings(max_examples=300, deadline=None)
@given(lower_bound_cases())
def test_under_lower_bound_every_step_clears_min_quality_by_its_lower_bound(
    case: tuple[Policy, RequestContext, StatsSnapshot],
) -> None:
    policy, ctx, stats = case
    route = policy.routes["r"]
    lower = replace(route, quality_compare="lower_bound")
    d = plan(ctx, replace(policy, routes={"r": lower}, names={"r": lower}), stats)
    if d.min_quality is not None and d.relaxed is None:
        last = len(d.tiers) - 1
        for index, tier in enumerate(d.tiers):
            if route.strategy == "cascade" and index != last:
                continue  # early cascade tiers answer to the confidence signal
            for c in tier:
                est = c.estimate
                assert est.quality is not None
                # a measured figure with an interval is held to its lower bound; others by value
                held_to = est.quality_low if est.quality_low is not None else est.quality
                assert held_to >= d.min_quality
    # the lower bound is never above the mean: comparing by it never adds a step
    mean = replace(route, quality_compare="mean")
    by_mean = plan(ctx, replace(policy, routes={"r": mean}, names={"r": mean}), stats)
    if d.relaxed is None:
        assert {c.model for t in d.tiers for c in t if not c.probe} <= set(by_mean.order)
        if d.order:
            assert by_mean.relaxed is None
    for r in d.rejections:
        if r.reason is Reason.BELOW_MIN_QUALITY and "lower bound" in (r.detail or ""):
            assert r.value is not None and r.limit is not None and r.value < r.limit
