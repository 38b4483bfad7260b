"""Route selection by match rules: the loop that checks a policy's rules in turn agrees with
``rule_holds``, the definition of one rule, rule by rule and in order."""

from __future__ import annotations

import dataclasses
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelroute.errors import UnknownRouteError
from modelroute.planner import RequestContext
from modelroute.planner.select import _first_match, rule_holds, select_route
from modelroute.policy import load_policy_dict
from modelroute.policy.compiled import MatchRule, Route

from .policies import model

NAMES = ("a", "b", "c")
_names = st.frozensets(st.sampled_from(NAMES), max_size=2)
_maybe_bool = st.none() | st.booleans()
_tokens = st.none() | st.integers(0, 60)
_metadata_rule = st.lists(
    st.tuples(st.sampled_from(("k1", "k2")), st.frozensets(st.sampled_from(NAMES), min_size=1)),
    max_size=2,
    unique_by=lambda pair: pair[0],
).map(tuple)
rules = st.builds(
    MatchRule,
    models=_names,
    tasks=_names,
    metadata=_metadata_rule,
    min_prompt_tokens=_tokens,
    max_prompt_tokens=_tokens,
    tools=_maybe_bool,
    images=_maybe_bool,
)
contexts = st.builds(
    RequestContext,
    requested=st.none() | st.sampled_from(NAMES),
    task=st.none() | st.sampled_from(NAMES),
    metadata=st.dictionaries(st.sampled_from(("k1", "k2", "k3")), st.sampled_from(NAMES)).map(
        MappingProxyType
    ),
    prompt_tokens=st.integers(0, 60),
    has_tools=st.booleans(),
    has_images=st.booleans(),
)

_BASE = load_policy_dict(
    {"models": {"m": model()}, "routes": {"r": {"strategy": {"kind": "fixed", "models": ["m"]}}}}
).routes["r"]


def _route(index: int, rule: MatchRule) -> Route:
    return dataclasses.replace(_BASE, name=f"r{index}", match=rule)


@settings(max_examples=500, deadline=None)
@given(st.lists(rules, max_size=6), contexts)
def test_the_first_matching_route_is_the_first_whose_rule_holds(
    drawn: list[MatchRule], ctx: RequestContext
) -> None:
    routes = tuple(_route(i, rule) for i, rule in enumerate(drawn))
    expected = next((r for r in routes if r.match and rule_holds(r.match, ctx)), None)
    assert _first_match(routes, ctx) is expected


def test_selection_by_match_follows_the_declared_order() -> None:
    policy = load_policy_dict(
        {
            "models": {"m": model()},
            "routes": {
                "by-task": {
                    "match": {"task": ["t"]},
                    "strategy": {"kind": "fixed", "models": ["m"]},
                },
                "by-meta": {
                    "match": {"metadata": {"tier": ["gold"]}, "min_prompt_tokens": 10},
                    "strategy": {"kind": "fixed", "models": ["m"]},
                },
                "short": {
                    "match": {"max_prompt_tokens": 100, "tools": False},
                    "strategy": {"kind": "fixed", "models": ["m"]},
                },
            },
        }
    )
    gold = MappingProxyType({"tier": "gold"})
    assert select_route(policy, RequestContext(metadata=gold, prompt_tokens=50)) == (
        policy.routes["by-meta"],
        "match",
    )
    assert select_route(policy, RequestContext(metadata=gold, prompt_tokens=5)) == (
        policy.routes["short"],
        "match",
    )
    assert select_route(policy, RequestContext(task="t", metadata=gold, prompt_tokens=50)) == (
        policy.routes["by-task"],
        "match",
    )
    with pytest.raises(UnknownRouteError):  # no rule holds and there is no default route
        select_route(policy, RequestContext(prompt_tokens=5, has_tools=True))
