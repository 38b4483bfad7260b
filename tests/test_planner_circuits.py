"""Open circuits in the planner: the share of a request's candidates they may rule out, and
the least-bad open ones kept as probes beyond it."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings

from modelroute.planner import ModelStats, Reason, RequestContext, StatsSnapshot, plan
from modelroute.policy import Policy, load_policy_dict

from .policies import model
from .test_planner_properties import policies, requests, snapshots


def _policy(names: list[str], percent: int | None = None, **route: Any) -> Policy:
    defaults: dict[str, Any] = {}
    if percent is not None:
        defaults["circuit_breaker"] = {"max_ejection_percent": percent}
    route.setdefault("strategy", {"kind": "fixed", "models": names})
    models = {name: model(inp=1 + i) for i, name in enumerate(names)}
    return load_policy_dict({"defaults": defaults, "models": models, "routes": {"r": route}})


def _ctx(**kw: Any) -> RequestContext:
    kw.setdefault("requested", "r")
    kw.setdefault("prompt_tokens", 1000)
    return RequestContext(**kw)


def _open(*names: str, error_rates: dict[str, float] | None = None) -> StatsSnapshot:
    by_model = {m: ModelStats(error_rate=rate) for m, rate in (error_rates or {}).items()}
    return StatsSnapshot(by_model=by_model, open_circuits=frozenset(names))


def _probes(decision: Any) -> list[str]:
    return [c.model for tier in decision.tiers for c in tier if c.probe]


def test_an_open_circuit_within_the_share_is_ruled_out() -> None:
    d = plan(_ctx(), _policy(["a", "b", "c"]), _open("a"))
    assert d.order == ("b", "c") and not _probes(d)
    assert [(r.model, r.reason) for r in d.rejections] == [("a", Reason.CIRCUIT_OPEN)]


def test_beyond_the_share_the_least_bad_open_model_is_kept_last_as_a_probe() -> None:
    stats = _open("a", "b", error_rates={"a": 0.6, "b": 0.3})
    d = plan(_ctx(), _policy(["a", "b", "c"]), stats)
    assert d.order == ("c", "b")  # 50% of 3: one may go; b fails less than a
    assert _probes(d) == ["b"]
    [probe] = [c for c in d.tiers[0] if c.probe]
    assert [w.reason for w in probe.waived] == [Reason.CIRCUIT_OPEN]
    assert d.feasible and d.relaxed is None
    assert [(r.model, r.reason) for r in d.rejections] == [("a", Reason.CIRCUIT_OPEN)]


def test_every_circuit_open_still_leaves_a_probe() -> None:
    d = plan(_ctx(), _policy(["a", "b"]), _open("a", "b"))
    assert d.order == ("a",) and _probes(d) == ["a"]  # no error rates: the route's order
    one = plan(_ctx(), _policy(["solo"]), _open("solo"))
    assert one.order == ("solo",) and _probes(one) == ["solo"]


def test_a_direct_request_for_an_open_model_is_a_probe() -> None:
    policy = _policy(["a", "b"])
    d = plan(_ctx(requested="a"), policy, _open("a"))
    assert d.order == ("a",) and _probes(d) == ["a"]


@pytest.mark.parametrize(("percent", "kept"), [(0, 3), (34, 2), (67, 1), (100, 0)])
def test_the_share_is_a_policy_setting(percent: int, kept: int) -> None:
    d = plan(_ctx(), _policy(["a", "b", "c"], percent), _open("a", "b", "c"))
    assert len(_probes(d)) == kept
    assert len(d.rejections) == 3 - kept


def test_at_100_percent_every_candidate_may_be_ruled_out() -> None:
    d = plan(_ctx(), _policy(["a", "b"], 100), _open("a", "b"))
    assert not d.tiers
    assert {r.reason for r in d.rejections} == {Reason.CIRCUIT_OPEN}


def test_a_model_that_fails_another_check_is_never_kept() -> None:
    policy = load_policy_dict(
        {
            "models": {"small": model(ctx=1000), "big": model(ctx=100_000, inp=5)},
            "routes": {"r": {"strategy": {"kind": "fixed", "models": ["small", "big"]}}},
        }
    )
    d = plan(_ctx(prompt_tokens=5000), policy, _open("small", "big"))
    assert d.order == ("big",) and _probes(d) == ["big"]
    small = {r.reason for r in d.rejections if r.model == "small"}
    assert small == {Reason.CONTEXT_TOO_SMALL, Reason.CIRCUIT_OPEN}


def test_probes_come_after_the_route_fallbacks() -> None:
    policy = load_policy_dict(
        {
            "models": {n: model(inp=1 + i) for i, n in enumerate(["a", "b", "c", "d"])},
            "routes": {
                "r": {
                    "strategy": {"kind": "cheapest_qualified", "models": ["a", "b", "c"]},
                    "fallbacks": ["d"],
                }
            },
        }
    )
    d = plan(_ctx(), policy, _open("a", "b", "c"))
    assert d.order == ("d", "a")  # two of four may go; a is first in the route
    assert _probes(d) == ["a"]


@settings(max_examples=150, deadline=None)
@given(policies(), requests, snapshots())
def test_open_circuits_never_take_more_than_their_share(
    policy: Policy, ctx: RequestContext, stats: StatsSnapshot
) -> None:
    """Against the same request with every circuit closed: what is missing was ruled out for
    its circuit alone, at most half of the candidates (rounded down), and never all."""
    closed = plan(ctx, policy, replace(stats, open_circuits=frozenset()))
    d = plan(ctx, policy, stats)
    assert set(_probes(d)) <= stats.open_circuits
    if closed.relaxed is not None or not closed.tiers:
        return
    assert d.tiers, "open circuits left a route with candidates nothing to try"
    missing = set(closed.order) - set(d.order)
    assert missing <= stats.open_circuits
    if policy.routes["r"].strategy != "cascade":  # a cascade's quality bar may move a tier
        assert len(missing) <= len(closed.order) // 2


def test_a_probe_below_min_quality_is_dropped_when_its_cascade_tier_becomes_final() -> None:
    """An early cascade tier answers to the confidence signal, not min_quality; but when the
    final tier is emptied the early tier is final, and a probe kept there must meet the bar."""
    caps = ["logprobs"]
    models = {"early": model(quality={"r": 0.5}, caps=caps), "late": model(ctx=500, caps=caps)}
    route = {
        "constraints": {"min_quality": 0.8},
        "strategy": {
            "kind": "cascade",
            "tiers": [["early"], ["late"]],
            "confidence": {"signal": "logprobs", "threshold": 0.8},
        },
    }
    policy = load_policy_dict({"models": models, "routes": {"r": route}})
    d = plan(_ctx(), policy, _open("early"))
    assert not d.feasible and not _probes(d)
    assert {(r.model, r.reason) for r in d.rejections} >= {
        ("early", Reason.BELOW_MIN_QUALITY),
        ("late", Reason.CONTEXT_TOO_SMALL),
    }


def test_a_probe_offered_by_on_infeasible_is_still_a_probe() -> None:
    """A cascade's only model left is open and of unknown quality: the ejection cap keeps it
    as a probe, min_quality then rules it out, and on_infeasible offers it back. It must
    still say its circuit is open, so the engine sends it as the breaker's one probe."""
    models = {"a": model(caps=["logprobs"]), "b": model(ctx=500)}
    route = {
        "strategy": {
            "kind": "cascade",
            "tiers": [["a"], ["b"]],
            "confidence": {"signal": "logprobs", "threshold": 0.8},
        },
        "constraints": {"min_quality": 0.5},
        "on_infeasible": "cheapest",
    }
    policy = load_policy_dict({"models": models, "routes": {"r": route}})
    d = plan(_ctx(), policy, _open("a"))
    assert d.relaxed == "cheapest" and _probes(d) == ["a"]
    [offered] = [c for tier in d.tiers for c in tier]
    assert {w.reason for w in offered.waived} == {Reason.CIRCUIT_OPEN, Reason.QUALITY_UNKNOWN}
