"""Measured quality with its interval in the planner: the estimate and decision carry the
interval, sources and version; ``quality.compare: lower_bound`` holds a model to the interval's
lower bound; ``explain`` prints the figure with what it rests on."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.planner import ModelStats, Reason, RequestContext, StatsSnapshot, plan
from modelroute.policy import Policy, load_policy_dict
from modelroute.render import render_decision

from .policies import model


def _policy(defaults: dict[str, Any] | None = None, **route: Any) -> Policy:
    route.setdefault("strategy", {"kind": "cheapest_qualified"})
    route.setdefault("constraints", {"min_quality": 0.85})
    return load_policy_dict(
        {
            "defaults": defaults or {},
            "models": {
                "small": model(inp=0.1, quality={"r": 0.6}),
                "large": model(inp=5, quality={"r": 0.95}),
            },
            "routes": {"r": route},
        }
    )


CTX = RequestContext(requested="r", prompt_tokens=1000)
# The mean clears 0.85, the lower bound does not.
SMALL = ModelStats(
    quality=0.87,
    quality_samples=412,
    quality_low=0.84,
    quality_high=0.90,
    quality_sources="eval+shadow",
    quality_version="small-2024-07-18",
)
STATS = StatsSnapshot(by_route={("r", "small"): SMALL})


def test_the_estimate_carries_the_interval_sources_and_version() -> None:
    d = plan(CTX, _policy(), STATS)
    assert d.chosen == "small"
    est = d.tiers[0][0].estimate
    assert (est.quality, est.quality_low, est.quality_high) == (0.87, 0.84, 0.90)
    assert (est.quality_sources, est.quality_version) == ("eval+shadow", "small-2024-07-18")
    assert est.quality_source == "measured" and est.quality_samples == 412
    shown = d.tiers[0][0].to_dict()
    assert shown["quality_low"] == 0.84 and shown["quality_version"] == "small-2024-07-18"


def test_too_few_outcomes_leave_the_prior_and_no_interval() -> None:
    few = StatsSnapshot(
        by_route={("r", "small"): ModelStats(**{**_fields(SMALL), "quality_samples": 29})}
    )
    d = plan(CTX, _policy(), few)
    [small] = [r for r in d.rejections if r.model == "small"]
    assert small.value == 0.6 and small.detail == "prior"


@pytest.mark.parametrize(
    ("defaults", "route"),
    [
        ({"quality": {"compare": "lower_bound"}}, {}),
        ({}, {"quality": {"compare": "lower_bound"}}),
        ({"quality": {"compare": "mean"}}, {"quality": {"compare": "lower_bound"}}),
    ],
)
def test_lower_bound_must_clear_min_quality(
    defaults: dict[str, Any], route: dict[str, Any]
) -> None:
    policy = _policy(defaults, **route)
    assert policy.routes["r"].quality_compare == "lower_bound"
    d = plan(CTX, policy, STATS)
    assert d.chosen == "large"
    [rejection] = [r for r in d.rejections if r.model == "small"]
    assert rejection.reason is Reason.BELOW_MIN_QUALITY
    assert (rejection.value, rejection.limit) == (0.84, 0.85)
    assert rejection.message == (
        "below_min_quality: 0.840 < 0.850 (measured lower bound; mean 0.870, n=412)"
    )


def test_a_route_may_compare_by_the_mean_when_the_default_is_lower_bound() -> None:
    policy = _policy({"quality": {"compare": "lower_bound"}}, quality={"compare": "mean"})
    assert plan(CTX, policy, STATS).chosen == "small"


def test_lower_bound_compares_a_figure_without_an_interval_by_its_value() -> None:
    # the prior (0.95) and a plain measured mean have no interval: they compare as they are
    plain = StatsSnapshot(by_route={("r", "small"): ModelStats(quality=0.9, quality_samples=40)})
    d = plan(CTX, _policy({"quality": {"compare": "lower_bound"}}), plain)
    assert d.order == ("small", "large")


def test_the_option_leaves_the_hash_of_a_policy_that_does_not_use_it() -> None:
    plain = _policy()
    assert _policy({"quality": {"compare": "mean"}}).hash == plain.hash
    assert _policy({"quality": {"min_samples": 30}}).hash == plain.hash
    assert _policy({"quality": {"compare": "lower_bound"}}).hash != plain.hash
    assert _policy(quality={"compare": "lower_bound"}).hash != plain.hash


def test_stats_with_intervals_round_trip_through_their_json_shape() -> None:
    data = STATS.to_dict()
    assert data["routes"]["r"]["small"]["quality_sources"] == "eval+shadow"
    assert StatsSnapshot.from_dict(data) == STATS
    with pytest.raises(ValueError, match="need a 'quality'"):
        StatsSnapshot.from_dict({"routes": {"r": {"small": {"quality_low": 0.1}}}})


def test_explain_prints_the_interval_and_what_it_rests_on() -> None:
    policy = _policy()
    text = render_decision(plan(CTX, policy, STATS), policy)
    assert "quality 0.87 ±0.03 (n=412, eval+shadow, small-2024-07-18)" in text
    strict = _policy({"quality": {"compare": "lower_bound"}})
    text = render_decision(plan(CTX, strict, STATS), strict)
    assert "the interval's lower bound must clear min_quality" in text
    assert "small: below_min_quality: 0.840 < 0.850 (measured lower bound" in text


def _fields(stats: ModelStats) -> dict[str, Any]:
    return {name: getattr(stats, name) for name in ModelStats.__dataclass_fields__}
