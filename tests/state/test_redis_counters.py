"""The Redis counters against the in-process ones: the same answers for the same calls, and
atomic under concurrent callers (many clients, as many replicas would be)."""

from __future__ import annotations

import asyncio

import pytest

from modelroute.state.limits import BudgetCheck, Counters, MemoryCounters, RateCheck
from modelroute.state.redis_state import RedisCounters, connect

from .conftest import REDIS_URL


@pytest.fixture(params=["memory", "redis"])
def counters(request: pytest.FixtureRequest) -> Counters:
    if request.param == "memory":
        return MemoryCounters()
    prefix = request.getfixturevalue("redis_prefix")
    return RedisCounters(connect(REDIS_URL), prefix)


async def test_rate_checks_are_all_or_nothing(counters: Counters) -> None:
    both = [RateCheck("a", 2, None), RateCheck("b", 5, None)]
    assert (await counters.rate(both, 0)).admitted
    assert (await counters.rate(both, 0)).admitted
    refused = await counters.rate(both, 0)
    assert not refused.admitted and refused.refused == 0
    assert 59.0 <= refused.retry_after_s <= 60.0
    # "b" was not charged by the refused request: three more fit
    for _ in range(3):
        assert (await counters.rate([RateCheck("b", 5, None)], 0)).admitted
    assert not (await counters.rate([RateCheck("b", 5, None)], 0)).admitted
    await counters.aclose()


async def test_tokens_are_counted_and_corrected(counters: Counters) -> None:
    check = [RateCheck("t", None, 1000)]
    assert (await counters.rate(check, 600)).admitted
    assert not (await counters.rate(check, 600)).admitted
    await counters.add_tokens(["t"], -500)  # the first used 100
    assert (await counters.rate(check, 600)).admitted
    await counters.aclose()


async def test_budgets_reserve_settle_and_refuse_with_what_is_left(counters: Counters) -> None:
    checks = [BudgetCheck("usd", 1.0, 4_102_444_800)]
    assert (await counters.reserve(checks, "r1", 0.6, 60)).admitted
    refused = await counters.reserve(checks, "r2", 0.6, 60)
    assert not refused.admitted and refused.left_usd[0] == pytest.approx(0.4)
    await counters.settle(["usd"], "r1", 0.25)
    assert await counters.spent("usd") == pytest.approx(0.25)
    verdict = await counters.reserve(checks, "r2", 0.6, 60)
    assert verdict.admitted and verdict.left_usd[0] == pytest.approx(0.75)
    await counters.settle(["usd"], "r2", 0.75)
    spent_out = await counters.reserve(checks, "r3", 0.0, 60)
    assert not spent_out.admitted  # nothing is left: even a free request is refused
    await counters.aclose()


async def test_admission_reserves_and_rates_in_one_call_all_or_nothing(
    counters: Counters,
) -> None:
    budget = [BudgetCheck("usd", 1.0, 4_102_444_800)]
    rate = [RateCheck("rl", 2, None)]
    first = await counters.admit(budget, "r1", 0.3, 60, rate, 0)
    assert first.admitted and first.budget.left_usd == (pytest.approx(1.0),)
    short = await counters.admit(budget, "r2", 0.8, 60, rate, 0)
    assert not short.budget.admitted and short.budget.left_usd[0] == pytest.approx(0.7)
    assert short.rate.admitted  # not checked, and nothing taken from it
    assert (await counters.admit(budget, "r3", 0.3, 60, rate, 0)).admitted  # the 2nd request
    full = await counters.admit(budget, "r4", 0.1, 60, rate, 0)
    assert full.budget.admitted and not full.rate.admitted and full.rate.refused == 0
    assert 59.0 <= full.rate.retry_after_s <= 60.0
    # r4 reserved nothing: 0.4 is left (0.3 + 0.3 held), as a budget-only call sees
    left = await counters.reserve(budget, "r5", 0.4, 60)
    assert left.admitted and left.left_usd[0] == pytest.approx(0.4)
    only_rate = await counters.admit([], "r6", 0.0, 60, [RateCheck("other", 1, None)], 0)
    assert only_rate.admitted and only_rate.budget.left_usd == ()
    await counters.aclose()


async def test_finishing_settles_the_budget_and_corrects_the_tokens(counters: Counters) -> None:
    budget = [BudgetCheck("usd", 1.0, 4_102_444_800)]
    rate = [RateCheck("tk", None, 1000)]
    assert (await counters.admit(budget, "r1", 0.5, 60, rate, 800)).admitted
    assert not (await counters.admit(budget, "r2", 0.1, 60, rate, 300)).admitted  # tokens
    await counters.finish(["usd"], "r1", 0.2, ["tk"], -700)  # cost 0.2, used 100 tokens
    assert await counters.spent("usd") == pytest.approx(0.2)
    verdict = await counters.admit(budget, "r2", 0.1, 60, rate, 300)
    assert verdict.admitted and verdict.budget.left_usd[0] == pytest.approx(0.8)
    await counters.aclose()


async def test_concurrent_clients_never_admit_past_a_limit(redis_prefix: str) -> None:
    clients = [RedisCounters(connect(REDIS_URL), redis_prefix) for _ in range(6)]
    check = [RateCheck("rl", 100, None)]
    budget = [BudgetCheck("bd", 1.0, 4_102_444_800)]

    async def hammer(c: RedisCounters, n: int) -> tuple[int, int]:
        rated = reserved = 0
        for i in range(n):
            rated += (await c.rate(check, 0)).admitted
            reserved += (await c.reserve(budget, f"{id(c)}-{i}", 0.03, 60)).admitted
        return rated, reserved

    results = await asyncio.gather(*(hammer(c, 50) for c in clients))
    assert sum(r for r, _ in results) == 100
    assert sum(b for _, b in results) == 33  # 33 x 0.03 <= 1.0 < 34 x 0.03
    for c in clients:
        await c.aclose()


async def test_concurrent_admissions_never_pass_a_limit(redis_prefix: str) -> None:
    clients = [RedisCounters(connect(REDIS_URL), redis_prefix) for _ in range(6)]
    rate = [RateCheck("rl2", 40, None)]
    budget = [BudgetCheck("bd2", 1.0, 4_102_444_800)]

    async def hammer(c: RedisCounters, n: int) -> tuple[int, int]:
        admitted = short = 0
        for i in range(n):
            verdict = await c.admit(budget, f"{id(c)}-{i}", 0.02, 60, rate, 0)
            admitted += verdict.admitted
            short += not verdict.budget.admitted
        return admitted, short

    results = await asyncio.gather(*(hammer(c, 20) for c in clients))
    assert sum(a for a, _ in results) == 40  # the rate limit binds first: 40 x 0.02 < 1.0
    assert sum(s for _, s in results) == 0
    spent = await clients[0].client.hlen(f"{redis_prefix}bd2")
    assert spent == 40  # a reservation per admitted request, none for the refused
    for c in clients:
        await c.aclose()


async def test_an_unreachable_redis_raises_quickly() -> None:
    counters = RedisCounters(connect("redis://127.0.0.1:1/0", timeout_s=0.2), "x:")
    with pytest.raises(Exception) as failed:
        await counters.rate([RateCheck("a", 1, None)], 0)
    assert "connect" in str(failed.value).lower() or isinstance(failed.value, OSError)
    await counters.aclose()
