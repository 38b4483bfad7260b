"""The planner's one-pass checks agree with the checks in constraints.py, model by model."""

from __future__ import annotations

from hypothesis import given, settings

from modelroute.planner import EMPTY_STATS, ModelStats, Reason, RequestContext, StatsSnapshot, plan
from modelroute.planner.constraints import (
    BUDGET_CHECKS,
    FEASIBILITY_CHECKS,
    Terms,
    meets_quality,
    unmet,
)
from modelroute.planner.constraints import passes as _passes
from modelroute.planner.context import Limits
from modelroute.planner.estimate import estimate
from modelroute.planner.terms import request_terms as _terms
from modelroute.policy import Policy, load_policy_dict

from .policies import model
from .test_planner_properties import policies, requests, snapshots


@settings(max_examples=300, deadline=None)
@given(policies(), requests, snapshots())
def test_unmet_and_the_fast_path_agree_with_each_check(
    policy: Policy, ctx: RequestContext, stats: StatsSnapshot
) -> None:
    route = policy.routes["r"]
    terms, _ = _terms(route, ctx, stats)
    for entry in route.entries:
        m = entry.model
        est = estimate(m, "r", terms, stats)
        found = [r for check in FEASIBILITY_CHECKS if (r := check(m, est, terms))]
        declared = [r for check in BUDGET_CHECKS if (r := check(m, est, terms))]
        assert unmet(m, est, terms) == (found, declared, meets_quality(m, est, terms))
        assert _passes(m, est, terms) == (not found and not declared)
        # The entry's looked-up prior and key are the ones estimate() looks up.
        assert entry.prior == m.quality.get("r") and entry.stats_key == ("r", m.name)
        # Its priors are what estimate() gives when nothing was measured, after the cost.
        assert entry.priors == estimate(m, "r", terms, EMPTY_STATS)[1:]
    # The planner's inline estimates are estimate()'s, for every candidate it offers.
    for tier in plan(ctx, policy, stats).tiers:
        for c in tier:
            assert c.estimate == estimate(policy.models[c.model], "r", terms, stats)


def test_a_relaxed_probe_keeps_its_circuit_waiver() -> None:
    """A model kept as its circuit's probe in a cascade's early tier, offered by on_infeasible
    once that tier became the final one (its quality unknown), is still sent as a probe."""
    confidence = {"signal": "logprobs", "threshold": 0.8}
    cascade = {"kind": "cascade", "tiers": [["m1"], ["m2"]], "confidence": confidence}
    policy = load_policy_dict(
        {
            "models": {"m1": model(inp=1, caps=["logprobs"]), "m2": model(inp=2)},
            "routes": {"r": {"strategy": cascade, "on_infeasible": "cheapest"}},
        }
    )
    ctx = RequestContext("r", limits=Limits(min_quality=0.0))
    d = plan(ctx, policy, StatsSnapshot(open_circuits=frozenset({"m1"})))
    assert d.relaxed == "cheapest" and d.order == ("m1",)
    [offered] = d.tiers[0]
    assert offered.probe
    assert [w.reason for w in offered.waived] == [Reason.CIRCUIT_OPEN, Reason.QUALITY_UNKNOWN]


def test_estimate_reads_the_route_figures_then_the_model_wide_ones() -> None:
    policy = load_policy_dict(
        {
            "models": {"a": model(p95=300, quality={"r": 0.5})},
            "routes": {"r": {"strategy": {"kind": "fixed", "models": ["a"]}}},
        }
    )
    a = policy.models["a"]
    terms = Terms(10, 10, None, frozenset(), frozenset(), None, None, None, 2)
    stats = StatsSnapshot(
        by_route={("r", "a"): ModelStats(quality=0.9, quality_samples=2)},
        by_model={"a": ModelStats(latency_p95_ms=40.0)},
    )
    est = estimate(a, "r", terms, stats)
    assert (est.latency_ms, est.latency_source) == (40.0, "measured")
    assert (est.quality, est.quality_source, est.quality_samples) == (0.9, "measured", 2)
    fewer = estimate(a, "r", terms._replace(min_quality_samples=3), stats)
    assert (fewer.quality, fewer.quality_source, fewer.quality_samples) == (0.5, "prior", 2)
