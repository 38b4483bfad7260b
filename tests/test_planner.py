"""The planner: each constraint, each strategy, route selection and on_infeasible."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute import UnknownRouteError, request_context
from modelroute.planner import (
    Decision,
    Limits,
    ModelStats,
    Reason,
    RequestContext,
    StatsSnapshot,
    plan,
)
from modelroute.policy import Policy, load_policy, load_policy_dict

from .conftest import EXAMPLES
from .policies import model


def _policy(models: dict[str, Any], **route: Any) -> Policy:
    route.setdefault("strategy", {"kind": "cheapest_qualified"})
    return load_policy_dict({"models": models, "routes": {"r": route}})


def _ctx(**kw: Any) -> RequestContext:
    kw.setdefault("requested", "r")
    kw.setdefault("prompt_tokens", 1000)
    return RequestContext(**kw)


def _reasons(decision: Any, name: str) -> set[str]:
    return {r.reason.value for r in decision.rejections if r.model == name}


def test_cheapest_qualified_orders_by_estimated_cost() -> None:
    policy = _policy(
        {
            "pricey": model(inp=10, out=30),
            "cheap": model(inp=0.1, out=0.2),
            "mid": model(inp=1, out=2),
        }
    )
    d = plan(_ctx(), policy)
    assert d.order == ("cheap", "mid", "pricey")
    assert d.tiers[0][0].estimate.cost_usd == pytest.approx((1000 * 0.1 + 256 * 0.2) / 1e6)


def test_over_cost_ceiling_carries_both_numbers() -> None:
    policy = _policy(
        {"big": model(inp=10, out=30), "small": model(inp=0.1, out=0.4)},
        constraints={"max_cost_usd": 0.01},
        objective="max_quality",
    )
    d = plan(_ctx(prompt_tokens=2000, max_output_tokens=1000), policy)
    [rej] = [r for r in d.rejections if r.model == "big"]
    assert rej.reason is Reason.OVER_COST_CEILING
    assert rej.value == pytest.approx((2000 * 10 + 1000 * 30) / 1e6)
    assert rej.limit == 0.01
    assert rej.message == "over_cost_ceiling: est $0.0500 > $0.0100"
    assert d.chosen == "small"


def test_latency_uses_measured_p95_over_the_prior() -> None:
    policy = _policy(
        {"a": model(p95=500), "b": model(p95=900, inp=0.5)}, constraints={"max_latency_ms": 800}
    )
    d = plan(_ctx(), policy)
    assert _reasons(d, "b") == {"over_latency_budget"} and d.order == ("a",)
    stats = StatsSnapshot(
        by_model={"a": ModelStats(latency_p95_ms=1200), "b": ModelStats(latency_p95_ms=700)}
    )
    d = plan(_ctx(), policy, stats)
    assert d.order == ("b",)
    [rej] = d.rejections
    assert rej.model == "a" and rej.value == 1200 and rej.detail == "measured"


def test_quality_measured_for_the_route_wins_over_the_prior() -> None:
    policy = _policy(
        {"a": model(quality={"r": 0.95}), "b": model(inp=0.1, quality={"r": 0.7})},
        constraints={"min_quality": 0.9},
    )
    d = plan(_ctx(), policy)
    assert d.order == ("a",) and _reasons(d, "b") == {"below_min_quality"}
    stats = StatsSnapshot(by_route={("r", "b"): ModelStats(quality=0.93, quality_samples=500)})
    d = plan(_ctx(), policy, stats)
    assert d.order == ("b", "a")
    assert d.tiers[0][0].estimate.quality_source == "measured"


@pytest.mark.parametrize(
    ("setting", "needed"), [({}, 30), ({"defaults": {"quality": {"min_samples": 5}}}, 5)]
)
def test_measured_quality_replaces_the_prior_only_from_min_samples_rated_requests(
    setting: dict[str, Any], needed: int
) -> None:
    policy = load_policy_dict(
        {
            **setting,
            "models": {"cheap": model(inp=0.1, quality={"r": 0.85}), "big": model(inp=5)},
            "routes": {
                "r": {
                    "strategy": {"kind": "cheapest_qualified"},
                    "constraints": {"min_quality": 0.8},
                }
            },
        }
    )
    assert policy.routes["r"].min_quality_samples == needed

    def cheap(rated: int) -> Any:
        stats = StatsSnapshot(
            by_route={("r", "cheap"): ModelStats(quality=0.1, quality_samples=rated)}
        )
        d = plan(_ctx(), policy, stats)
        [c] = [c for tier in d.tiers for c in tier if c.model == "cheap"] or [None]
        return d, c

    d, c = cheap(needed - 1)  # one short: the prior holds, and the decision says so
    assert d.chosen == "cheap" and c.estimate.quality == 0.85
    assert c.estimate.quality_source == "prior" and c.estimate.quality_samples == needed - 1
    assert c.to_dict()["quality_samples"] == needed - 1
    d, c = cheap(needed)
    assert d.chosen is None or d.chosen != "cheap"
    [rejection] = [r for r in d.rejections if r.model == "cheap"]
    assert rejection.reason is Reason.BELOW_MIN_QUALITY and rejection.detail == "measured"


def test_min_samples_is_validated() -> None:
    from modelroute.errors import PolicyError

    for bad in (0, 501, "many"):
        with pytest.raises(PolicyError, match="min_samples"):
            load_policy_dict(
                {
                    "defaults": {"quality": {"min_samples": bad}},
                    "models": {"a": model()},
                    "routes": {"r": {"strategy": {"kind": "fixed", "models": ["a"]}}},
                }
            )


def test_an_unset_quality_setting_keeps_the_policy_hash() -> None:
    base = {
        "models": {"a": model()},
        "routes": {"r": {"strategy": {"kind": "fixed", "models": ["a"]}}},
    }
    same = load_policy_dict({**base, "defaults": {"quality": {"min_samples": 30}}})
    other = load_policy_dict({**base, "defaults": {"quality": {"min_samples": 31}}})
    assert load_policy_dict(base).hash == same.hash != other.hash


def test_unknown_quality_cannot_meet_a_quality_bar() -> None:
    policy = _policy({"a": model()}, constraints={"min_quality": 0.5}, on_infeasible="reject")
    d = plan(_ctx(), policy)
    assert not d.tiers and _reasons(d, "a") == {"quality_unknown"}


def test_context_capabilities_and_circuits() -> None:
    policy = _policy(
        {
            "small-ctx": model(ctx=1000),
            "no-tools": model(ctx=10_000),
            "ok": model(ctx=10_000, caps=["tools", "json_mode"], inp=5),
        }
    )
    d = plan(_ctx(prompt_tokens=900, has_tools=True, needs_json=True), policy)
    assert _reasons(d, "small-ctx") == {"context_too_small", "missing_capability"}
    [missing] = [r for r in d.rejections if r.model == "no-tools"]
    assert missing.detail == "json_mode, tools"
    assert d.order == ("ok",)
    d = plan(
        _ctx(prompt_tokens=900, has_tools=True, needs_json=True),
        policy,
        StatsSnapshot(open_circuits=frozenset({"small-ctx", "ok"})),
    )
    # The only model that fits is kept, as a probe (tests/test_planner_circuits.py).
    assert _reasons(d, "small-ctx") == {"context_too_small", "missing_capability", "circuit_open"}
    assert d.order == ("ok",) and d.tiers[0][0].probe


def test_output_limit_of_the_model() -> None:
    policy = _policy({"a": model(max_output_tokens=4096), "b": model(inp=3)})
    d = plan(_ctx(max_output_tokens=8000), policy)
    assert _reasons(d, "a") == {"output_too_long"} and d.order == ("b",)


def test_request_limits_only_tighten() -> None:
    policy = _policy(
        {"a": model(inp=1), "b": model(inp=0.01, out=0.01)}, constraints={"max_cost_usd": 0.01}
    )
    looser = plan(_ctx(limits=Limits(max_cost_usd=5.0)), policy)
    assert looser.max_cost_usd == 0.01
    assert any("looser" in n for n in looser.notes)
    tighter = plan(_ctx(limits=Limits(max_cost_usd=0.0001)), policy)
    assert tighter.max_cost_usd == 0.0001
    assert tighter.order == ("b",) and _reasons(tighter, "a") == {"over_cost_ceiling"}


def test_fixed_keeps_declared_order_and_appends_fallbacks() -> None:
    policy = _policy(
        {"x": model(inp=9), "y": model(inp=1), "z": model(inp=0.1)},
        strategy={"kind": "fixed", "models": ["x", "y"]},
        fallbacks=["z", "x"],
    )
    d = plan(_ctx(), policy)
    assert d.order == ("x", "y", "z")
    assert [c.fallback for c in d.tiers[0]] == [False, False, True]


def test_fallbacks_follow_the_ordered_candidates() -> None:
    policy = _policy(
        {"x": model(inp=9), "y": model(inp=5), "z": model(inp=0.1)},
        strategy={"kind": "cheapest_qualified", "models": ["x", "y"]},
        fallbacks=["z"],
    )
    assert plan(_ctx(), policy).order == ("y", "x", "z")


def test_cascade_moves_the_quality_bar_when_the_final_tier_is_empty() -> None:
    models = {
        "cheap": model(inp=0.1, quality={"r": 0.6}, caps=["logprobs"]),
        "strong": model(inp=5, quality={"r": 0.95}, ctx=100),
    }
    policy = _policy(
        models,
        constraints={"min_quality": 0.9},
        strategy={
            "kind": "cascade",
            "tiers": [["cheap"], ["strong"]],
            "confidence": {"signal": "logprobs", "threshold": 0.8},
        },
    )
    d = plan(_ctx(), policy)
    assert not d.tiers
    assert _reasons(d, "strong") == {"context_too_small"}
    assert _reasons(d, "cheap") == {"below_min_quality"}


def test_cascade_checks_quality_on_the_final_tier_only() -> None:
    models = {
        "cheap": model(inp=0.1, quality={"r": 0.6}, caps=["logprobs"]),
        "strong": model(inp=5, quality={"r": 0.95}),
    }
    policy = _policy(
        models,
        constraints={"min_quality": 0.9},
        strategy={
            "kind": "cascade",
            "tiers": [["cheap"], ["strong"]],
            "confidence": {"signal": "logprobs", "threshold": 0.8},
        },
    )
    d = plan(_ctx(), policy)
    assert [[c.model for c in t] for t in d.tiers] == [["cheap"], ["strong"]]
    assert d.rejections == ()


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ("reject", ()),
        ("cheapest", ("cheap",)),
        ("strongest", ("strong",)),
    ],
)
def test_on_infeasible(action: str, expected: tuple[str, ...]) -> None:
    models = {
        "cheap": model(inp=0.1, quality={"r": 0.6}),
        "strong": model(inp=5, quality={"r": 0.85}),
        "tiny": model(ctx=10),
    }
    policy = _policy(models, constraints={"min_quality": 0.9}, on_infeasible=action)
    d = plan(_ctx(), policy)
    assert d.order == expected
    assert not d.feasible
    assert "context_too_small" in _reasons(d, "tiny")  # never offered, whatever the action
    if expected:
        [chosen] = d.tiers[0]
        assert d.relaxed == action
        assert [w.reason.value for w in chosen.waived] == ["below_min_quality"]
        assert chosen.model not in {r.model for r in d.rejections}


def test_relax_latency_waives_only_the_latency_budget() -> None:
    models = {"slow": model(p95=5000), "slow-pricey": model(p95=4000, inp=50, out=50)}
    policy = _policy(
        models,
        constraints={"max_latency_ms": 1000, "max_cost_usd": 0.02},
        on_infeasible="relax_latency",
    )
    d = plan(_ctx(), policy)
    assert d.order == ("slow",) and d.relaxed == "relax_latency"
    assert _reasons(d, "slow-pricey") == {"over_latency_budget", "over_cost_ceiling"}


def test_route_selection_precedence() -> None:
    policy = load_policy(EXAMPLES / "documents.yaml")
    body = {"messages": [{"role": "user", "content": "hi"}]}
    by_match = plan(request_context({**body, "metadata": {"document_type": "invoice"}}), policy)
    assert (by_match.route, by_match.selected_by) == ("invoice-extraction", "match")
    by_task = plan(
        request_context(
            {**body, "metadata": {"document_type": "invoice"}},
            {"x-modelroute-task": "contract-review"},
        ),
        policy,
    )
    assert (by_task.route, by_task.selected_by) == ("contract-review", "task")
    by_name = plan(
        request_context(
            {**body, "model": "scanned-report"}, {"x-modelroute-task": "contract-review"}
        ),
        policy,
    )
    assert (by_name.route, by_name.selected_by) == ("scanned-report", "name")
    direct = plan(request_context({**body, "model": "haiku"}), policy)
    assert (direct.route, direct.strategy, direct.order) == ("haiku", "direct", ("haiku",))
    fallback = plan(request_context(body), policy)
    assert (fallback.route, fallback.selected_by) == ("general-document", "default")


def test_unknown_route_without_a_default() -> None:
    policy = load_policy(EXAMPLES / "faq.yaml")
    with pytest.raises(UnknownRouteError) as info:
        plan(
            request_context({"model": "nope", "messages": [{"role": "user", "content": "x"}]}),
            policy,
        )
    assert "faq" in info.value.known


def test_images_need_vision() -> None:
    policy = load_policy(EXAMPLES / "documents.yaml")
    body = {
        "model": "general-document",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "what is this"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                ],
            }
        ],
    }
    d = plan(request_context(body), policy)
    assert _reasons(d, "haiku") == {"missing_capability"}
    assert d.prompt_tokens > 765


def test_a_decision_holds_every_field_by_name() -> None:
    """plan() builds its Decision from the fields in order, bypassing the keyword
    constructor: a field added to Decision without a value there would go missing."""
    policy = _policy(
        {"big": model(inp=10, out=30), "small": model(inp=0.1, out=0.4)},
        constraints={"max_cost_usd": 0.01},
    )
    d = plan(_ctx(prompt_tokens=2000, max_output_tokens=1000), policy)
    assert len(d) == len(Decision._fields)
    assert d == Decision(**d._asdict())
    assert (d.route, d.strategy, d.policy_hash) == ("r", "cheapest_qualified", policy.hash)
    assert d.max_cost_usd == 0.01 and d.affinity is None
