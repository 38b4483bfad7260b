"""Circuit breakers shared through Redis: two replicas' views, synced explicitly (the
background task does the same every few tens of milliseconds)."""

from __future__ import annotations

import asyncio

from modelroute.failures import FailureClass
from modelroute.policy.compiled import BreakerPolicy
from modelroute.state.breakers import Breakers
from modelroute.state.redis_state import connect
from modelroute.state.shared_circuits import SharedBreakers

from .conftest import REDIS_URL
from .support import assert_closing_ends_despite_a_swallowed_cancellation

SETTINGS = {"m": BreakerPolicy(consecutive_failures=3, min_calls=1000, cooldown_s=0.2)}
DOWN = FailureClass.SERVER_ERROR


def replica(prefix: str, url: str = REDIS_URL, **kwargs: float) -> SharedBreakers:
    return SharedBreakers(Breakers(SETTINGS), connect(url), SETTINGS, prefix=prefix, **kwargs)


async def test_a_circuit_opened_on_one_replica_opens_on_the_other(redis_prefix: str) -> None:
    a, b = replica(redis_prefix), replica(redis_prefix)
    await b.sync()
    for _ in range(3):
        a.failure("m", DOWN)
    assert a.state("m") == "open" and b.state("m") == "closed"
    await a.sync(poll=False)
    await b.sync()
    assert b.state("m") == "open" and "m" in b.open_models()
    assert not b.allow("m")
    await a.aclose()
    await b.aclose()


async def test_failures_spread_over_replicas_trip_the_shared_breaker(redis_prefix: str) -> None:
    a, b = replica(redis_prefix), replica(redis_prefix)
    a.failure("m", DOWN)
    a.failure("m", DOWN)
    b.failure("m", DOWN)
    assert a.state("m") == b.state("m") == "closed"  # neither saw three in a row alone
    await a.sync(poll=False)
    await b.sync()
    await a.sync()
    assert a.state("m") == b.state("m") == "open"
    await a.aclose()
    await b.aclose()


async def test_a_success_between_failures_breaks_the_shared_run(redis_prefix: str) -> None:
    a, b = replica(redis_prefix), replica(redis_prefix)
    a.failure("m", DOWN)
    a.failure("m", DOWN)
    await a.sync(poll=False)
    b.success("m")
    b.failure("m", DOWN)
    await b.sync()
    assert b.state("m") == "closed"
    await a.aclose()
    await b.aclose()


async def test_a_probe_that_succeeds_on_one_replica_closes_the_others(redis_prefix: str) -> None:
    a, b = replica(redis_prefix), replica(redis_prefix)
    for _ in range(3):
        a.failure("m", DOWN)
    await a.sync(poll=False)
    await b.sync()
    assert b.state("m") == "open"
    await asyncio.sleep(0.25)  # past the cool-down
    assert a.allow("m")  # a's probe
    a.success("m")
    await a.sync(poll=False)
    await b.sync()
    assert a.state("m") == "closed" and b.state("m") == "closed"
    await a.aclose()
    await b.aclose()


async def test_the_background_task_keeps_replicas_in_step(redis_prefix: str) -> None:
    a = replica(redis_prefix, interval_s=0.01, poll_s=0.02)
    b = replica(redis_prefix, interval_s=0.01, poll_s=0.02)
    await a.start()
    await b.start()
    for _ in range(3):
        a.failure("m", DOWN)
    for _ in range(500):  # a deadline against a hang, not a timing assertion
        if b.state("m") == "open":
            break
        await asyncio.sleep(0.01)
    assert b.state("m") == "open"
    await a.aclose()
    await b.aclose()


async def test_without_redis_each_replica_judges_alone() -> None:
    errors: list[tuple[str, str]] = []
    lonely = SharedBreakers(
        Breakers(SETTINGS), connect("redis://127.0.0.1:1/0", 0.1), SETTINGS,
        interval_s=0.01, poll_s=0.01, on_error=lambda *e: errors.append(e),
    )  # fmt: skip
    await lonely.start()
    for _ in range(3):
        lonely.failure("m", DOWN)
    for _ in range(500):
        if errors:
            break
        await asyncio.sleep(0.01)
    assert errors and errors[0] == ("circuits", "local")
    assert lonely.state("m") == "open"  # its own outcomes still trip it
    await lonely.aclose()


async def test_closing_ends_the_sync_even_if_the_client_swallows_the_cancellation(
    redis_prefix: str,
) -> None:
    """Seen once with a real client: a cancelled command raised a connection error instead
    of the cancellation, the loop took it for Redis being away, and shutdown waited on."""
    a = replica(redis_prefix, interval_s=0.001, poll_s=0.001)
    await assert_closing_ends_despite_a_swallowed_cancellation(a, a.aclose)
