"""The pin stores side by side, in process and in Redis: the same answers to the same calls;
in Redis shared by several clients (as by several replicas), bounded per route and lapsing on
Redis's own clock."""

from __future__ import annotations

import asyncio

import pytest
import redis

from modelroute.sessions import MemoryPins, PinStore, open_pins
from modelroute.sessions.redis_pins import RedisPins
from modelroute.state.redis_state import connect

from ..state.conftest import REDIS_URL

TTL, BOUND = 60.0, 3


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["memory", "redis"])
def pins(request: pytest.FixtureRequest) -> PinStore:
    if request.param == "memory":
        return MemoryPins(FakeClock())
    return RedisPins(connect(REDIS_URL), request.getfixturevalue("redis_prefix"))


async def test_a_pin_is_read_back_per_route_and_session(pins: PinStore) -> None:
    assert await pins.get("chat", "s1", TTL, BOUND) is None
    await pins.put("chat", "s1", "dear", TTL, BOUND)
    assert await pins.get("chat", "s1", TTL, BOUND) == "dear"
    assert await pins.get("other", "s1", TTL, BOUND) is None
    await pins.put("chat", "s1", "cheap", TTL, BOUND)  # moved
    assert await pins.get("chat", "s1", TTL, BOUND) == "cheap"
    await pins.aclose()


async def test_the_least_recently_used_pins_go_past_the_bound(pins: PinStore) -> None:
    for s in ("a", "b", "c"):
        await pins.put("chat", s, "m", TTL, BOUND)
    assert await pins.get("chat", "a", TTL, BOUND) == "m"  # a used: b is the oldest now
    await pins.put("chat", "d", "m", TTL, BOUND)
    found = {s: await pins.get("chat", s, TTL, BOUND) for s in "abcd"}
    assert found == {"a": "m", "b": None, "c": "m", "d": "m"}
    await pins.put("other", "x", "m", TTL, 1)  # each route has its own bound
    assert await pins.get("chat", "a", TTL, BOUND) == "m"
    await pins.aclose()


async def test_memory_pins_lapse_on_their_clock() -> None:
    clock = FakeClock()
    pins = MemoryPins(clock)
    await pins.put("chat", "s", "m", 10.0, BOUND)
    clock.now += 9.0
    assert await pins.get("chat", "s", 10.0, BOUND) == "m"  # and its TTL starts again
    clock.now += 9.0
    assert await pins.get("chat", "s", 10.0, BOUND) == "m"
    clock.now += 10.0
    assert await pins.get("chat", "s", 10.0, BOUND) is None
    assert len(pins) == 0


async def test_redis_pins_lapse_and_are_shared_by_replicas(redis_prefix: str) -> None:
    one, two = (RedisPins(connect(REDIS_URL), redis_prefix) for _ in range(2))
    await one.put("chat", "s", "dear", 0.05, BOUND)
    assert await two.get("chat", "s", 0.05, BOUND) == "dear"
    raw = redis.Redis.from_url(REDIS_URL)
    assert 0 < raw.pttl(f"{redis_prefix}pin:chat:s") <= 50
    await asyncio.sleep(0.2)  # at least four TTLs on Redis's clock
    assert await one.get("chat", "s", 0.05, BOUND) is None
    assert raw.zcard(f"{redis_prefix}pins:chat") == 0
    raw.close()
    # many replicas writing at once: the bound holds
    clients = [RedisPins(connect(REDIS_URL), redis_prefix) for _ in range(5)]
    await asyncio.gather(
        *(
            c.put("chat", f"s{i}-{j}", "m", TTL, BOUND)
            for i, c in enumerate(clients)
            for j in range(4)
        )
    )
    raw = redis.Redis.from_url(REDIS_URL)
    assert raw.zcard(f"{redis_prefix}pins:chat") == BOUND
    assert len(list(raw.scan_iter(match=f"{redis_prefix}pin:chat:*"))) == BOUND
    raw.close()
    for c in (one, two, *clients):
        await c.aclose()


async def test_open_pins_follows_the_state_url(redis_prefix: str) -> None:
    assert isinstance(open_pins("memory"), MemoryPins)
    shared = open_pins(f"{REDIS_URL}?prefix={redis_prefix}")
    assert isinstance(shared, RedisPins) and shared.prefix == redis_prefix
    await shared.aclose()
