"""A route's daily shadow budget holds: a shadow is sent only while the day's spend, what
shadows still out reserved (the planner's estimate) and its own estimate fit; the actual cost
settles the reservation; a failed shadow gives its reservation back; UTC midnight, on the
injected wall clock, starts a new day."""

from __future__ import annotations

import asyncio
import math
from collections import defaultdict

import pytest

from modelroute.failures import FailureClass
from modelroute.shadow import DailyBudget
from modelroute.testing import Fail, Reply, ScriptedProvider
from modelroute.types import Usage

from .shadow_support import DAY, ask, counted, make_router, outcomes

# What the planner estimates for "hello" on route chat (prompt tokens, output_tokens 5) at
# cheap's $1 per million tokens, and what cheap reports spending: less than the estimate.
ACTUAL_USAGE = Usage(input_tokens=3, output_tokens=1)
ACTUAL_USD = 4 / 1e6
LIMIT_USD = 0.0001


def _shadow(limit: float = LIMIT_USD) -> str:
    return f"{{models: [cheap], sample: 1, max_usd_per_day: {limit}}}"


async def test_spend_never_exceeds_the_budget_and_the_next_day_starts_afresh() -> None:
    provider = ScriptedProvider(
        {"live": Reply("Paris"), "cheap": Reply("Paris", latency_s=0.5, usage=ACTUAL_USAGE)}
    )
    midnight = 20_001 * DAY
    router = make_router(provider, _shadow(), start=midnight - 50 * 60 + 30)
    assert router.shadows is not None
    budget = router.shadows.budgets["chat"]
    for minute in range(100):  # one a minute: fifty before midnight, fifty after
        await asyncio.sleep(60 * minute - asyncio.get_running_loop().time())
        seen = await ask(router)
        assert seen.answer == "Paris"
        assert budget.spent_usd + budget.reserved_usd <= LIMIT_USD
    await router.aclose()
    records = list(router.records.records)  # type: ignore[attr-defined]
    prompt = records[0].decision["prompt_tokens"]
    estimate = (prompt + 5) / 1e6
    assert estimate > ACTUAL_USD
    # The k-th shadow of a day goes out while (k - 1) actual costs plus one estimate fit.
    per_day = math.floor((LIMIT_USD - estimate) / ACTUAL_USD) + 1
    by_day: dict[int, list[float]] = defaultdict(list)
    for outcome in outcomes(router):
        by_day[int(outcome.created_at // DAY)].append(outcome.cost_usd or 0.0)
    assert sorted(by_day) == [20_000, 20_001]
    assert [len(costs) for _, costs in sorted(by_day.items())] == [per_day, per_day]
    assert all(sum(costs) <= LIMIT_USD for costs in by_day.values())
    assert counted(router, "skipped", model="cheap", reason="budget") == 100 - 2 * per_day
    spent = sum(map(sum, by_day.values()))
    assert counted(router, "cost_usd", model="cheap") == pytest.approx(spent, rel=1e-12)


async def test_shadows_in_flight_hold_their_reservations() -> None:
    """Forty sampled at once, each slow: only as many go out as their estimates fit, since
    none has settled yet when the next one asks."""
    provider = ScriptedProvider(
        {"live": Reply("Paris"), "cheap": Reply("Paris", latency_s=5, usage=ACTUAL_USAGE)}
    )
    router = make_router(provider, _shadow(), workers=40)
    seen = await asyncio.gather(*(ask(router, "hello") for _ in range(40)))
    await router.aclose()
    records = list(router.records.records)  # type: ignore[attr-defined]
    estimate = (records[0].decision["prompt_tokens"] + 5) / 1e6
    sent = counted(router, "requests", model="cheap")
    assert sent == math.floor(LIMIT_USD / estimate) < 40
    assert counted(router, "skipped", model="cheap", reason="budget") == 40 - sent
    assert {s.answer for s in seen} == {"Paris"}


async def test_a_failed_shadow_gives_its_reservation_back() -> None:
    failing = [Fail(FailureClass.SERVER_ERROR)] * 2  # both attempts of the first shadow
    provider = ScriptedProvider(
        {"live": Reply("Paris"), "cheap": [*failing, Reply("Paris", usage=ACTUAL_USAGE)]}
    )
    router = make_router(provider, None)  # measured first, to fit the budget to one estimate
    await ask(router)
    [record] = list(router.records.records)  # type: ignore[attr-defined]
    estimate = (record.decision["prompt_tokens"] + 5) / 1e6
    await router.aclose()
    router = make_router(provider, _shadow(limit=estimate * 1.5))
    assert router.shadows is not None
    await ask(router)
    await asyncio.sleep(1)
    budget = router.shadows.budgets["chat"]
    assert (budget.spent_usd, budget.reserved_usd) == (0.0, 0.0)
    assert counted(router, "failures", model="cheap", failure="server_error") == 1
    await ask(router)  # fits again: the failure spent nothing
    await router.aclose()
    assert len(outcomes(router)) == 1
    assert budget.spent_usd == ACTUAL_USD


def test_a_reservation_settles_on_the_day_it_was_made() -> None:
    now = [20_000 * DAY + DAY - 1]
    budget = DailyBudget(1.0, lambda: now[0])
    late = budget.reserve(0.75)
    assert late is not None and budget.reserve(0.5) is None
    now[0] += 2  # midnight passed while it was out
    assert budget.reserve(0.5) is not None  # a new day: nothing spent yet
    budget.settle(late, 0.75)  # yesterday's: today's budget is not charged
    assert budget.spent_usd == 0.0 and budget.reserved_usd == 0.5
