"""Session affinity in the planner: pure, on the pin it is given; every decision on a route
with affinity says initialize, retain or switch, and why; replaying the planner's input
(the pin included) gives the same decision."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.errors import PolicyError
from modelroute.planner import RequestContext, StatsSnapshot, plan
from modelroute.planner.affinity import Action, Why
from modelroute.policy import Policy, load_policy_dict
from modelroute.records.planner_input import PlannerInput

from ..policies import model

# cheap < mid < dear by input price; quality the other way round
MODELS = {
    "cheap": model(inp=1.0, out=1.0, p95=900, quality={"chat": 0.70}, ctx=4_000),
    "mid": model(inp=1.1, out=1.1, p95=500, quality={"chat": 0.80}),
    "dear": model(inp=5.0, out=5.0, p95=300, quality={"chat": 0.95}),
}


def _policy(affinity: Any, objective: str = "min_cost", **route: Any) -> Policy:
    route.setdefault("strategy", {"kind": "cheapest_qualified", "models": list(MODELS)})
    spec = {"objective": objective, "affinity": affinity, **route}
    return load_policy_dict({"models": MODELS, "routes": {"chat": spec}})


def _ctx(pin: str | None = None, tokens: int = 1000, **kw: Any) -> RequestContext:
    return RequestContext(requested="chat", prompt_tokens=tokens, pin=pin, **kw)


def _aff(decision: Any) -> tuple[str, str]:
    return decision.affinity.action, decision.affinity.why


def test_no_affinity_leaves_the_decision_alone() -> None:
    for setting in (None, "none", {"mode": "none"}):
        d = plan(_ctx(pin="dear"), _policy(setting))
        assert d.affinity is None and d.chosen == "cheap"
        assert "affinity" not in d.to_dict()


def test_a_session_without_a_pin_initializes_on_the_planners_choice() -> None:
    d = plan(_ctx(), _policy("sticky"))
    assert _aff(d) == (Action.INITIALIZE, Why.NO_PIN)
    assert d.chosen == "cheap" and d.order == plan(_ctx(), _policy("none")).order
    assert "cheap will be pinned" in d.affinity.message
    assert d.to_dict()["affinity"]["action"] == "initialize"


def test_sticky_keeps_the_pinned_model_first_and_the_rest_as_fallbacks() -> None:
    d = plan(_ctx(pin="dear"), _policy("sticky"))
    assert _aff(d) == (Action.RETAIN, Why.STICKY)
    assert d.order == ("dear", "cheap", "mid")
    assert d.affinity.first_choice == "cheap" and d.affinity.pinned == "dear"
    assert "session retain" in d.reason


def test_a_pin_on_the_first_choice_is_retained_as_such() -> None:
    d = plan(_ctx(pin="cheap"), _policy("adaptive"))
    assert _aff(d) == (Action.RETAIN, Why.FIRST_CHOICE)
    assert d.order == ("cheap", "mid", "dear")


def test_adaptive_keeps_the_pin_within_the_margin_and_switches_beyond_it() -> None:
    policy = _policy({"mode": "adaptive", "margin": 0.2})
    kept = plan(_ctx(pin="mid"), policy)  # 10% dearer than cheap
    assert _aff(kept) == (Action.RETAIN, Why.WITHIN_MARGIN)
    assert kept.order[0] == "mid"
    assert kept.affinity.pinned_value == pytest.approx(kept.affinity.best_value * 1.1)
    switched = plan(_ctx(pin="dear"), policy)  # 5x dearer
    assert _aff(switched) == (Action.SWITCH, Why.BEYOND_MARGIN)
    assert switched.order[0] == "cheap"
    assert "beyond the margin 0.2" in switched.affinity.message
    # a margin of 5 (500%) keeps even the dear model
    loose = plan(_ctx(pin="dear"), _policy({"mode": "adaptive", "margin": 5}))
    assert _aff(loose) == (Action.RETAIN, Why.WITHIN_MARGIN) and loose.chosen == "dear"


def test_adaptive_compares_in_the_routes_objective() -> None:
    # max_quality: dear is the first choice; mid is 0.15 below it, cheap 0.25
    policy = _policy({"mode": "adaptive", "margin": 0.2}, objective="max_quality")
    assert _aff(plan(_ctx(pin="mid"), policy)) == (Action.RETAIN, Why.WITHIN_MARGIN)
    assert _aff(plan(_ctx(pin="cheap"), policy)) == (Action.SWITCH, Why.BEYOND_MARGIN)
    # min_latency: dear (300 ms) first; mid 500 ms is 67% slower
    fast = _policy({"mode": "adaptive", "margin": 0.5}, objective="min_latency")
    assert _aff(plan(_ctx(pin="mid"), fast)) == (Action.SWITCH, Why.BEYOND_MARGIN)
    slow_ok = _policy({"mode": "adaptive", "margin": 0.7}, objective="min_latency")
    assert _aff(plan(_ctx(pin="mid"), slow_ok)) == (Action.RETAIN, Why.WITHIN_MARGIN)


def test_a_pinned_model_a_hard_constraint_rejects_is_switched_away_from() -> None:
    policy = _policy("sticky")
    d = plan(_ctx(pin="cheap", tokens=5_000), policy)  # over cheap's 4k context window
    assert _aff(d) == (Action.SWITCH, Why.REJECTED)
    assert d.affinity.detail == "context_too_small" and d.chosen == "mid"
    assert "pinned cheap rejected (context_too_small); now mid" in d.affinity.message
    capped = _policy("sticky", constraints={"max_cost_usd": 0.002})
    over = plan(_ctx(pin="dear"), capped)
    assert (
        _aff(over) == (Action.SWITCH, Why.REJECTED) and over.affinity.detail == "over_cost_ceiling"
    )


def test_a_pinned_model_whose_circuit_is_open_is_switched_away_from() -> None:
    stats = StatsSnapshot(open_circuits=frozenset({"dear"}))
    d = plan(_ctx(pin="dear"), _policy("sticky"), stats)
    assert _aff(d) == (Action.SWITCH, Why.CIRCUIT_OPEN) and d.chosen == "cheap"
    # a pin offered only as a circuit probe is not retained either
    solo = {"m": model()}
    spec = {"strategy": {"kind": "fixed", "models": ["m"]}, "affinity": "sticky"}
    policy = load_policy_dict({"models": solo, "routes": {"r": spec}})
    probe = plan(
        RequestContext(requested="r", prompt_tokens=10, pin="m"),
        policy,
        StatsSnapshot(open_circuits=frozenset({"m"})),
    )
    assert probe.tiers[0][0].probe and _aff(probe) == (Action.SWITCH, Why.CIRCUIT_OPEN)


def test_a_pin_the_route_no_longer_lists_is_switched_away_from() -> None:
    d = plan(_ctx(pin="retired"), _policy("sticky"))
    assert _aff(d) == (Action.SWITCH, Why.NOT_A_CANDIDATE) and d.chosen == "cheap"


def test_a_cascade_pinned_to_its_escalation_tier_starts_there() -> None:
    strategy = {
        "kind": "cascade",
        "tiers": [["cheap"], ["dear"]],
        "confidence": {"signal": "validator", "validator": "json", "threshold": 0.5},
    }
    policy = _policy("sticky", strategy=strategy)
    d = plan(_ctx(pin="dear"), policy)
    assert _aff(d) == (Action.RETAIN, Why.STICKY)
    assert [[c.model for c in t] for t in d.tiers] == [["dear"]]


def test_replaying_the_recorded_input_gives_the_same_decision() -> None:
    policy = _policy({"mode": "adaptive", "margin": 0.2})
    for pin in (None, "mid", "dear", "retired"):
        ctx = _ctx(pin=pin)
        d = plan(ctx, policy)
        stored = PlannerInput(ctx, StatsSnapshot(), d).to_dict()
        assert stored.get("pin") == pin
        again = PlannerInput.from_dict(stored)
        assert plan(again.context, policy, again.stats) == d


def test_policy_errors_name_the_setting() -> None:
    with pytest.raises(PolicyError) as bad_mode:
        _policy("always")
    assert "affinity" in str(bad_mode.value)
    with pytest.raises(PolicyError) as bad_ttl:
        _policy({"mode": "sticky", "ttl": "soon"})
    assert "not a duration" in str(bad_ttl.value)
    assert _policy({"mode": "sticky", "ttl": "30m"}).routes["chat"].affinity.ttl_s == 1800


def test_an_unused_affinity_setting_does_not_change_the_policy_hash() -> None:
    assert _policy(None).hash == load_policy_dict(
        {"models": MODELS, "routes": {"chat": {"objective": "min_cost", "strategy": {
            "kind": "cheapest_qualified", "models": list(MODELS)}}}}
    ).hash  # fmt: skip
    assert _policy("sticky").hash != _policy(None).hash


def test_explain_prints_what_affinity_did() -> None:
    from modelroute.render import render_decision

    policy = _policy({"mode": "adaptive", "margin": 0.2})
    text = render_decision(plan(_ctx(pin="dear"), policy), policy)
    assert "session affinity (adaptive): switch: cheap (" in text
    assert "against pinned dear (" in text and "beyond the margin 0.2" in text
