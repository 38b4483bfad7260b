"""A model's own rate limit (``rate_limit:`` in its policy entry) through the real router,
planner and engine over ``ScriptedProvider``: counted over every route that calls the model
first, per model or per caller, all or nothing with the route's and the key's limits."""

from __future__ import annotations

import random

import pytest

from modelroute import load_policy_text
from modelroute.errors import PolicyError, RateLimitedError
from modelroute.records.record import MemorySink
from modelroute.router import Router
from modelroute.state.admission import Admission
from modelroute.state.limits import MemoryCounters
from modelroute.testing import ScriptedProvider

from .support import MODEL, FakeClock, body, key

POLICY = f"""
version: model-limits
models:
  quota:{MODEL.format(name="quota")}
    rate_limit: {{requests_per_minute: 3}}
  keyed:{MODEL.format(name="keyed")}
    rate_limit: {{requests_per_minute: 2, per: key}}
  spare:{MODEL.format(name="spare")}
  tokens:{MODEL.format(name="tokens")}
    rate_limit: {{tokens_per_minute: 1000}}
routes:
  first:
    strategy: {{kind: fixed, models: [quota]}}
  second:
    strategy: {{kind: fixed, models: [quota]}}
  behind:
    strategy: {{kind: fixed, models: [spare, quota]}}
  by-key:
    strategy: {{kind: fixed, models: [keyed]}}
  both:
    rate_limit: {{requests_per_minute: 10, per: route}}
    strategy: {{kind: fixed, models: [quota]}}
  by-tokens:
    output_tokens: 400
    strategy: {{kind: fixed, models: [tokens]}}
"""


def router(clock: FakeClock, counters: MemoryCounters | None = None) -> Router:
    return Router(
        load_policy_text(POLICY, "model-limits.yaml"),
        providers={"openai": ScriptedProvider({})},
        rng=random.Random(1),
        api_keys={},
        sink=MemorySink(),
        limits=Admission(counters or MemoryCounters(clock), clock=clock),
    )


async def test_a_models_limit_counts_every_route_that_calls_it_first() -> None:
    clock = FakeClock()
    r = router(clock)
    await r.chat(body("first"), key("alice"))
    await r.chat(body("second"), key("bob"))
    await r.chat(body("behind"), key("carol"))  # quota only as a fallback: not counted
    clock.now += 10
    await r.chat(body("first"), key("carol"))
    with pytest.raises(RateLimitedError) as refused:
        await r.chat(body("second"), key("dave"))
    err = refused.value
    assert err.details["rate_limit"] == {
        "of": "model 'quota'", "requests_per_minute": 3, "tokens_per_minute": None,
        "per": "model",
    }  # fmt: skip
    assert err.retry_after_s == pytest.approx(50.0)  # the first two leave the minute then
    assert err.record.http_status == 429 and err.record.attempt_count == 0
    await r.chat(body("behind"), key("dave"))  # another first model: still served
    clock.now += 50
    await r.chat(body("second"), key("dave"))


async def test_a_per_key_model_limit_gives_each_caller_its_allowance() -> None:
    r = router(FakeClock())
    for _ in range(2):
        await r.chat(body("by-key"), key("alice"))
    with pytest.raises(RateLimitedError) as refused:
        await r.chat(body("by-key"), key("alice"))
    assert refused.value.details["rate_limit"]["per"] == "key"
    await r.chat(body("by-key"), key("bob"))


async def test_model_and_route_limits_are_taken_all_or_nothing() -> None:
    clock = FakeClock()
    counters = MemoryCounters(clock)
    r = router(clock, counters)
    for _ in range(3):
        await r.chat(body("both"), key("alice"))
    with pytest.raises(RateLimitedError) as refused:
        await r.chat(body("both"), key("alice"))
    assert refused.value.details["rate_limit"]["of"] == "model 'quota'"
    # the refused request took nothing from the route's limit: 7 more fit there
    route_window = counters._slices["rate:route:both"]
    assert sum(v[0] for v in route_window.values()) == 3


async def test_a_models_token_limit_counts_the_estimate() -> None:
    r = router(FakeClock())
    with pytest.raises(RateLimitedError) as refused:  # prompt + 400 expected > 1000
        await r.chat(body("by-tokens", text="hello " * 1000), key("alice"))
    assert refused.value.details["rate_limit"]["tokens_per_minute"] == 1000
    await r.chat(body("by-tokens"), key("alice"))  # a short prompt + 400 fits


def test_a_model_limit_needs_some_limit() -> None:
    bad = POLICY.replace("rate_limit: {requests_per_minute: 2, per: key}", "rate_limit: {}")
    with pytest.raises(PolicyError) as err:
        load_policy_text(bad, "bad.yaml")
    assert "requests_per_minute" in str(err.value)


def test_a_model_limit_unused_leaves_the_policy_hash_unchanged() -> None:
    plain = POLICY.replace("    rate_limit: {requests_per_minute: 3}\n", "")
    with_limit = load_policy_text(POLICY, "a.yaml")
    without = load_policy_text(plain, "a.yaml")
    assert with_limit.hash != without.hash
    assert without.models["quota"].rate_limit is None
    assert with_limit.models["quota"].rate_limit is not None
