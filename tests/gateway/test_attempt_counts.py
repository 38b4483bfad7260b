"""Every request an upstream receives is an attempt in the record, and ``retries.max_attempts``
is the number of attempts on a model: through the real gateway and the simulator over real
sockets (see test_faults.py for how these tests run)."""

from __future__ import annotations

import asyncio

import pytest

from .faults_support import POLICY, ask, fail, one_record_each, scripted_sim, trail
from .harness import gateway


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_a_reset_on_a_reused_connection_is_one_recorded_attempt(stream: bool) -> None:
    """The second request reaches primary over the keep-alive connection the first one used,
    and the simulator resets it after reading it: the upstream got the request, so it is an
    attempt (it may have been processed and billed), never silently sent again."""
    sim = scripted_sim(**{"primary-sim": {"script": ["ok", "reset"]}})
    async with gateway(POLICY, sim) as gw:
        answer, first, _ = await ask(gw, "once", stream=stream)
        assert answer == "Paris" and trail(first) == [("primary", "ok", None)]
        answer, record, headers = await ask(gw, "once", stream=stream)
        assert answer == "secondary answer"
        assert trail(record) == [("primary", "failed", "server_error"), ("secondary", "ok", None)]
        assert headers["x-modelroute-attempts"] == "2"
        # What the upstreams received is exactly what the record says was sent.
        assert gw.sim.stats() == {"primary-sim": {"ok": 1, "reset": 1}, "secondary-sim": {"ok": 1}}
        assert len(gw.sim.requests()) == 3
        one_record_each(gw, 2)


async def test_a_reset_counts_against_the_breaker() -> None:
    policy = POLICY.replace(
        "defaults:\n", "defaults:\n  circuit_breaker: {consecutive_failures: 2}\n"
    )
    sim = scripted_sim(**{"primary-sim": {"script": ["ok", "reset", "reset"]}})
    async with gateway(policy, sim) as gw:
        await ask(gw, "once")
        for _ in range(2):
            _, record, _ = await ask(gw, "once")
            assert trail(record)[0] == ("primary", "failed", "server_error")
        assert gw.router.breakers.state("primary") == "open"
        assert gw.sim.stats()["primary-sim"] == {"ok": 1, "reset": 2}


ATTEMPTS = POLICY.replace(
    "routes:\n",
    """routes:
  one-attempt:
    retries: {max_attempts: 1, backoff_ms: 1, max_backoff_ms: 1}
    strategy: {kind: fixed, models: [primary]}
  two-attempts:
    retries: {max_attempts: 2, backoff_ms: 1, max_backoff_ms: 1}
    strategy: {kind: fixed, models: [primary]}
  three-attempts:
    retries: {max_attempts: 3, backoff_ms: 1, max_backoff_ms: 1}
    strategy: {kind: fixed, models: [primary]}
""",
)


@pytest.mark.parametrize("attempts", [1, 2, 3])
async def test_max_attempts_is_the_number_of_attempts_on_a_model(attempts: int) -> None:
    route = {1: "one-attempt", 2: "two-attempts", 3: "three-attempts"}[attempts]
    sim = scripted_sim(**{"primary-sim": {"script": ["server_error"] * 5}})
    async with gateway(ATTEMPTS, sim) as gw:
        error, record = await fail(gw, route)
        assert error.status_code == 502
        assert trail(record) == [("primary", "failed", "server_error")] * attempts
        assert error.response.headers["x-modelroute-attempts"] == str(attempts)
        assert gw.sim.stats() == {"primary-sim": {"server_error": attempts}}


async def test_the_retry_that_waited_out_retry_after_is_sent() -> None:
    """A's 429 says retry after 1 s; B's, half a second later, says the same. When A's wait is
    over, B's Retry-After still runs: A's retry is sent all the same (it waited for exactly
    that), and so is B's."""
    sim = scripted_sim(**{"primary-sim": {"script": ["rate_limited"] * 2, "retry_after_s": 1}})
    async with gateway(POLICY, sim) as gw:
        first = asyncio.ensure_future(ask(gw, "patient"))
        await asyncio.sleep(0.5)
        second = asyncio.ensure_future(ask(gw, "patient"))
        for answer, record, headers in await asyncio.gather(first, second):
            assert answer == "Paris"
            assert trail(record) == [("primary", "failed", "rate_limited"), ("primary", "ok", None)]
            assert headers["x-modelroute-attempts"] == "2"
        assert gw.sim.stats() == {"primary-sim": {"rate_limited": 2, "ok": 2}}
