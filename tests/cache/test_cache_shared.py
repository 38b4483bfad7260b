"""The response cache in Redis, shared by two gateways (replicas); a Redis that cannot be
reached is a miss, never a failed request; and the audit counts the cache's savings, from
SQLite and PostgreSQL stores alike."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import redis

from modelroute.cache.redis_cache import RedisCache
from modelroute.records.metrics import MetricsSink
from modelroute.state.backends import open_state
from modelroute.state.redis_state import connect

from ..conftest import run_cli
from ..gateway.fixtures import sdk_client, sim_config
from ..gateway.harness import Gateway, gateway
from ..records.conftest import make_store
from ..state.conftest import REDIS_URL
from .support import CACHED_POLICY

MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]


async def _ask(gw: Gateway, **params: Any) -> Any:
    client = sdk_client(gw, timeout=20)
    return await client.chat.completions.with_raw_response.create(
        model="cached", messages=MESSAGES, temperature=0, **params
    )


async def test_replicas_share_the_cache_through_redis(redis_prefix: str) -> None:
    one, two = (
        RedisCache(connect(REDIS_URL), redis_prefix),
        RedisCache(connect(REDIS_URL), redis_prefix),
    )
    async with (
        gateway(CACHED_POLICY, sim_config(), cache=one) as a,
        gateway(CACHED_POLICY, sim_config(), cache=two) as b,
    ):
        made = await _ask(a)
        shared = await _ask(b)
        assert made.headers["x-modelroute-cache"] == "miss"
        assert shared.headers["x-modelroute-cache"] == "hit"
        assert shared.parse().choices[0].message.content == "Paris"
        assert len(a.sim.requests()) == 1 and len(b.sim.requests()) == 0
        hit = b.record(shared.headers["x-modelroute-request-id"])
        assert hit.cache_saved_usd == pytest.approx(a.record(made.headers[
            "x-modelroute-request-id"]).cost_usd)  # fmt: skip
        client = sdk_client(b, timeout=20)
        stream = await client.chat.completions.create(
            model="cached", messages=MESSAGES, temperature=0, stream=True
        )
        assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == (
            "Paris"
        )
        assert len(b.sim.requests()) == 0
    check = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(check.scan_iter(match=f"{redis_prefix}cache:*"))
        assert len(keys) == 1
        left_ms = check.pttl(keys[0])
        assert 0 < left_ms <= 600_000  # Redis expires it: ttl 10m
    finally:
        check.close()


async def test_serve_state_redis_puts_the_cache_in_redis(redis_prefix: str) -> None:
    from modelroute import load_policy_text

    policy = load_policy_text(CACHED_POLICY.replace("{sim}", "http://127.0.0.1:9/v1"))
    backend = open_state(f"{REDIS_URL}?prefix={redis_prefix}", policy)
    assert isinstance(backend.cache, RedisCache) and backend.cache.prefix == f"{redis_prefix}cache:"
    assert open_state("memory", policy).cache is None  # the router's own, in memory
    for closing in (backend.cache, backend.circuits):
        await closing.aclose()  # type: ignore[union-attr]


async def test_an_unreachable_redis_is_a_miss_not_a_failure() -> None:
    errors: list[tuple[str, str]] = []
    dead = RedisCache(connect("redis://127.0.0.1:1/0"), "x:", on_error=lambda *e: errors.append(e))
    async with gateway(CACHED_POLICY, sim_config(), cache=dead) as gw:
        for _ in range(2):
            raw = await _ask(gw)
            assert raw.headers["x-modelroute-cache"] == "miss"
            assert raw.parse().choices[0].message.content == "Paris"
        assert len(gw.sim.requests()) == 2
    assert errors.count(("cache", "miss")) == 2 and errors.count(("cache", "skipped")) == 2


async def test_the_audit_counts_what_the_cache_saved(
    store_target: Path | str, tmp_path: Path
) -> None:
    store = make_store(store_target)
    metrics = MetricsSink(multiprocess=False)
    async with gateway(CACHED_POLICY, sim_config(), store=store, sinks=[metrics]) as gw:
        made = await _ask(gw)
        for _ in range(5):
            await _ask(gw)
        await _ask(gw, max_tokens=7)  # another key: a second miss
        await _ask(gw, max_tokens=7)
        cost = gw.record(made.headers["x-modelroute-request-id"]).cost_usd
        saved = sum(r.cache_saved_usd or 0.0 for r in gw.records() if r.cache_hit)
    assert cost > 0 and saved > 5 * cost  # the second key's hit saved something too
    done = run_cli("audit", "--store", str(store_target), "--json")
    assert done.returncode == 0, done.stderr
    report = orjson.loads(done.stdout)["cache_savings"]
    assert report["hits"] == 6
    assert report["saved_usd"] == pytest.approx(saved)
    assert report["low_usd"] <= report["monthly_usd"] <= report["high_usd"]
    assert report["buckets"] >= 1 and report["confidence"] == 0.95
    text = run_cli("audit", "--store", str(store_target))
    assert text.returncode == 0, text.stderr
    assert "response cache: 6 hits saved" in text.stdout
