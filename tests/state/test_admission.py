"""Rate limits and budgets through the real router, planner and engine over
``ScriptedProvider``, counted in process on a fake clock."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from modelroute.errors import BudgetExceededError, RateLimitedError
from modelroute.failures import FailureClass
from modelroute.identity import Budget as IdentityBudget
from modelroute.identity import ClientIdentity, RateLimits
from modelroute.records.record import MemorySink
from modelroute.state.limits import (
    AdmitVerdict,
    BudgetCheck,
    BudgetVerdict,
    MemoryCounters,
    RateCheck,
    RateVerdict,
)
from modelroute.testing import Fail, Reply, ScriptedProvider

from .support import FakeClock, body, key, make_router


async def test_a_rate_limit_admits_its_requests_per_minute_per_key() -> None:
    clock = FakeClock()
    router = make_router(ScriptedProvider({}), clock=clock)
    for _ in range(3):
        await router.chat(body("limited"), key("alice"))
        clock.now += 1
    with pytest.raises(RateLimitedError) as refused:
        await router.chat(body("limited"), key("alice"))
    err = refused.value
    assert err.details["rate_limit"]["requests_per_minute"] == 3
    assert err.retry_after_s == pytest.approx(57.0)  # the first request leaves the minute then
    assert err.record.http_status == 429 and err.record.attempt_count == 0
    await router.chat(body("limited"), key("bob"))  # another caller has its own allowance
    clock.now += 57.0
    await router.chat(body("limited"), key("alice"))  # the oldest left the sliding minute
    with pytest.raises(RateLimitedError):
        await router.chat(body("limited"), key("alice"))


async def test_a_route_wide_rate_limit_counts_every_caller_together() -> None:
    router = make_router(ScriptedProvider({}))
    await router.chat(body("shared"), key("alice"))
    await router.chat(body("shared"), key("bob"))
    with pytest.raises(RateLimitedError):
        await router.chat(body("shared"), key("carol"))


async def test_tokens_are_charged_by_estimate_then_corrected_by_usage() -> None:
    clock = FakeClock()
    router = make_router(ScriptedProvider({}), clock=clock)
    # each request is estimated at its prompt + 400 output tokens, uses ~11
    await router.chat(body("tokens"), key("alice"))
    await router.chat(body("tokens"), key("alice"))  # admitted: the first was corrected
    assert router.limits is not None
    await router.limits.settled()
    await router.chat(body("tokens"), key("alice"))
    await router.limits.settled()
    # now 3 x ~11 used; a request asking for 990 output tokens does not fit in 1000
    with pytest.raises(RateLimitedError):
        await router.chat(body("tokens", max_tokens=990), key("alice"))


async def test_a_budget_refuses_what_does_not_fit_and_counts_actual_costs() -> None:
    router = make_router(ScriptedProvider({}))
    assert router.limits is not None
    spent = 0.0
    admitted = 0
    with pytest.raises(BudgetExceededError) as refused:
        for _ in range(100):
            result = await router.chat(body("paid"), key("alice"))
            await router.limits.settled()
            spent += result.record.cost_usd
            admitted += 1
    assert admitted > 3  # settled with actual costs, far below the estimates reserved
    budget = refused.value.details["budget"]
    assert budget["usd"] == 0.05 and budget["period"] == "day"
    assert budget["current_period"] == "2025-03-14"
    assert budget["left_usd"] < budget["estimated_usd"]
    assert refused.value.record.http_status == 429
    stored = await router.limits.counters.spent("budget:route:paid:2025-03-14")
    assert stored == pytest.approx(spent)
    assert stored <= 0.05


async def test_concurrent_reservations_never_overcommit_a_budget() -> None:
    counters = MemoryCounters(FakeClock())
    checks = [BudgetCheck("b", 1.0, float("inf"))]
    verdicts = [await counters.reserve(checks, f"r{i}", 0.3, 60) for i in range(5)]
    assert [v.admitted for v in verdicts] == [True, True, True, False, False]
    await counters.settle(["b"], "r0", 0.1)  # cost less than reserved: room again
    assert (await counters.reserve(checks, "r5", 0.3, 60)).admitted
    assert not (await counters.reserve(checks, "r6", 0.3, 60)).admitted


async def test_a_reservation_nobody_settles_lapses() -> None:
    clock = FakeClock()
    counters = MemoryCounters(clock)
    checks = [BudgetCheck("b", 1.0, float("inf"))]
    assert (await counters.reserve(checks, "dead", 0.9, 300)).admitted
    assert not (await counters.reserve(checks, "next", 0.2, 300)).admitted
    clock.now += 301
    assert (await counters.reserve(checks, "next", 0.2, 300)).admitted


async def test_degrade_plans_again_with_what_is_left_and_says_so() -> None:
    router = make_router(ScriptedProvider({}))
    assert router.limits is not None
    chosen = []
    try:
        for _ in range(200):
            result = await router.chat(body("degradable", max_tokens=256), key("alice"))
            await router.limits.settled()
            chosen.append(result.record.final_model)
            notes = result.decision.notes
            if result.record.final_model == "cheap":
                assert any("on_budget degrade" in n for n in notes)
                assert any(r.model == "dear" for r in result.decision.rejections)
    except BudgetExceededError as refused:
        assert refused.value.record.http_status == 429
    assert chosen[0] == "dear" and "cheap" in chosen
    assert chosen.index("cheap") > 0 and set(chosen[chosen.index("cheap") :]) == {"cheap"}
    stored = await router.limits.counters.spent("budget:route:degradable:2025-03")
    assert stored <= 0.05


async def test_degrade_keeps_the_routes_quality_floor() -> None:
    router = make_router(ScriptedProvider({}))
    with pytest.raises(BudgetExceededError):
        for _ in range(200):
            result = await router.chat(body("floored", max_tokens=256))
            assert result.record.final_model == "dear"  # cheap is below min_quality
            assert router.limits is not None
            await router.limits.settled()


async def test_per_key_budgets_are_separate() -> None:
    router = make_router(ScriptedProvider({}))
    big = body("keyed", max_tokens=300)  # estimated at ~$0.018 of the $0.02 each
    await router.chat(big, key("alice"))
    with pytest.raises(BudgetExceededError):  # still held: not settled yet
        await router.chat(big, key("alice"))
    await router.chat(big, key("bob"))


async def test_a_failed_request_releases_its_reservation() -> None:
    down = Fail(FailureClass.SERVER_ERROR)
    router = make_router(ScriptedProvider({"dear": down, "cheap": down}))
    assert router.limits is not None
    for _ in range(10):  # each reserves ~$0.016 of $0.05: without release the 4th is refused
        with pytest.raises(Exception) as failed:
            await router.chat(body("paid"))
        assert not isinstance(failed.value, BudgetExceededError)
        await router.limits.settled()
    assert router.limits.held() == 0
    assert await router.limits.counters.spent("budget:route:paid:2025-03-14") == 0.0


async def test_a_stream_settles_its_actual_cost_when_it_ends() -> None:
    story = Reply(chunks=("a ", "b ", "c ", "d"))
    router = make_router(ScriptedProvider({"dear": story}))
    assert router.limits is not None
    opened = await router.stream(body("paid", stream=True))
    assert router.limits.held() == 1
    text = "".join([chunk.content async for chunk in opened])
    await router.limits.settled()
    assert text == "a b c d" and router.limits.held() == 0
    assert opened.record.cost_usd > 0
    spent = await router.limits.counters.spent("budget:route:paid:2025-03-14")
    assert spent == pytest.approx(opened.record.cost_usd)


class Unreachable:
    """Counters whose store does not answer."""

    async def rate(self, checks: Sequence[RateCheck], tokens: int) -> RateVerdict:
        raise ConnectionError("Connection refused")

    async def add_tokens(self, keys: Sequence[str], tokens: int) -> None:
        raise ConnectionError("Connection refused")

    async def reserve(
        self, checks: Sequence[BudgetCheck], request_id: str, usd: float, hold_s: float
    ) -> BudgetVerdict:
        raise ConnectionError("Connection refused")

    async def settle(self, keys: Sequence[str], request_id: str, usd: float) -> None:
        raise ConnectionError("Connection refused")

    async def admit(self, *args: object) -> AdmitVerdict:
        raise ConnectionError("Connection refused")

    async def finish(self, *args: object) -> None:
        raise ConnectionError("Connection refused")

    async def spent(self, key: str) -> float:
        raise ConnectionError("Connection refused")

    async def aclose(self) -> None:
        return None


async def test_unreachable_state_fails_open_or_closed_as_each_setting_says(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[tuple[str, str]] = []
    router = make_router(ScriptedProvider({}), Unreachable(), on_error=lambda *e: seen.append(e))
    with pytest.raises(BudgetExceededError) as refused:
        await router.chat(body("strict"))
    assert "cannot be checked" in str(refused.value)
    assert refused.value.record.http_status == 429
    result = await router.chat(body("lenient"))  # budget and rate limit fail open
    assert result.record.status == "ok"
    assert seen == [("budget", "closed"), ("budget", "open"), ("rate_limit", "open")]
    warnings = [r for r in caplog.records if r.name == "modelroute.state"]
    assert len(warnings) == 2  # one per operation, then quiet for a while
    assert "budget failing closed" in warnings[0].getMessage()
    await router.chat(body("lenient"))
    assert len(seen) == 5 and len([r for r in caplog.records if r.name == "modelroute.state"]) == 2


async def test_routes_without_limits_need_no_admission() -> None:
    router = make_router(ScriptedProvider({}))
    assert isinstance(router.records, MemorySink)
    result = await router.chat(body("limited"))
    assert result.record.status == "ok"


async def test_a_keys_own_budget_and_rate_limit_apply_on_every_route() -> None:
    alice = ClientIdentity(
        key_id="a1", name="alice", team="support",
        budget=IdentityBudget(usd=0.02, period="daily"),
        limits=RateLimits(requests_per_minute=2),
    )  # fmt: skip
    router = make_router(ScriptedProvider({}))
    assert router.limits is not None
    # a route without limits of its own: the key's rate limit still counts
    await router.chat(body("limited"), identity=alice)
    await router.chat(body("shared"), identity=alice)
    with pytest.raises(RateLimitedError) as limited:
        await router.chat(body("limited"), identity=alice)
    assert limited.value.details["rate_limit"]["of"] == "this API key"
    bob = ClientIdentity(key_id="b1", name="bob", budget=IdentityBudget(0.02, "monthly"))
    big = body("keyed", max_tokens=300)  # ~$0.018: the key's $0.02 holds one at a time
    await router.chat(big, identity=bob)  # its reservation is held until its settlement runs
    with pytest.raises(BudgetExceededError) as refused:
        await router.chat(big, identity=bob)
    assert refused.value.details["budget"]["of"] == "route 'keyed'"  # checked first
    assert "over its" in str(refused.value) and "ly budget" in str(refused.value)

    other = ClientIdentity(key_id="c1", name="carol", budget=IdentityBudget(0.01, "daily"))
    with pytest.raises(BudgetExceededError) as own:
        await router.chat(big, identity=other)  # fits the route's per-key $0.02, not $0.01
    assert own.value.details["budget"]["of"] == "this API key"
    assert own.value.details["budget"]["period"] == "day"
