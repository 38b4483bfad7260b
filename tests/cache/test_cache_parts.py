"""The cache's parts on their own: the key, the bounded in-process LRU, a streamed answer put
back together, and the policy's ``cache:`` settings (with file and line when wrong)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from modelroute import PolicyError, load_policy_text
from modelroute.cache import CachedAnswer, MemoryCache, cache_key, uncacheable
from modelroute.cache.collect import StreamCollector
from modelroute.types import StreamChunk

from .support import CACHED_POLICY, ask


def _key(body: dict[str, Any], route: str = "r", model: str = "m", model_id: str = "id") -> str:
    return cache_key(route, model, model_id, body)


def test_the_key_ignores_field_order_delivery_and_caller() -> None:
    body = ask(temperature=0, max_tokens=5, tools=[{"type": "function", "function": {"a": 1}}])
    reordered = dict(reversed(list(body.items())))
    assert _key(body) == _key(reordered)
    same = {**body, "stream": True, "stream_options": {"include_usage": True}, "user": "u",
            "metadata": {"session": "s"}, "model": "another-alias", "temperature": 0.0}  # fmt: skip
    assert _key(same) == _key(body)


@pytest.mark.parametrize(
    "change",
    [
        {"temperature": 0.2}, {"max_tokens": 6}, {"seed": 1}, {"stop": "x"}, {"top_p": 0.9},
        {"response_format": {"type": "json_object"}}, {"tools": []}, {"logprobs": True},
        {"some_new_field": 1}, {"messages": [{"role": "user", "content": "other"}]},
    ],
)  # fmt: skip
def test_every_other_field_changes_the_key(change: dict[str, Any]) -> None:
    body = ask(temperature=0, max_tokens=5)
    assert _key({**body, **change}) != _key(body)


def test_route_and_resolved_model_are_in_the_key() -> None:
    body = ask(temperature=0)
    keys = {_key(body), _key(body, route="r2"), _key(body, model="m2"), _key(body, model_id="i2")}
    assert len(keys) == 4


def test_what_may_be_cached() -> None:
    assert uncacheable(ask(temperature=0), False) is None
    assert uncacheable(ask(), False) is not None  # unset: providers default to sampling
    assert uncacheable(ask(temperature=0.3), False) is not None
    assert uncacheable(ask(temperature=0.3), True) is None
    assert uncacheable(ask(), True) is None
    assert uncacheable(ask(temperature=0, n=3), True) is not None
    assert uncacheable(ask(temperature=0, n=1), False) is None


def test_the_lru_is_bounded_by_entries_and_bytes() -> None:
    async def run() -> None:
        cache = MemoryCache(max_entries=3, max_bytes=10_000, clock=lambda: 0.0)
        for name in "abcd":
            await cache.put(name, b"x" * 100, 60)
        assert len(cache) == 3 and await cache.get("a") is None  # the oldest went
        assert await cache.get("b") == b"x" * 100  # b is now the most recently used
        await cache.put("e", b"y" * 100, 60)
        assert await cache.get("c") is None and await cache.get("b") is not None
        await cache.put("big", b"z" * 999, 60)  # under a tenth of max_bytes: kept
        assert await cache.get("big") is not None and len(cache) == 3
        await cache.put("huge", b"z" * 1001, 60)  # over a tenth: not kept, nothing pushed out
        assert await cache.get("huge") is None and len(cache) == 3
        by_bytes = MemoryCache(max_entries=100, max_bytes=1000, clock=lambda: 0.0)
        for i in range(12):
            await by_bytes.put(str(i), b"x" * 100, 60)
        assert len(by_bytes) == 10 and by_bytes.bytes == 1000
        await by_bytes.put("0", b"x" * 50, 60)  # replacing an entry counts its new size
        assert by_bytes.bytes <= 1000 and await by_bytes.get("0") == b"x" * 50

    asyncio.run(run())


def test_entries_expire_on_the_cache_clock() -> None:
    now = [0.0]

    async def run() -> None:
        cache = MemoryCache(clock=lambda: now[0])
        await cache.put("k", b"v", 30)
        now[0] = 29.999
        assert await cache.get("k") == b"v"
        now[0] = 30.0
        assert await cache.get("k") is None and len(cache) == 0 and cache.bytes == 0

    asyncio.run(run())


def test_an_entry_round_trips_and_damaged_bytes_are_a_miss() -> None:
    answer = CachedAnswer({"choices": []}, "m", 0.25, 1.0)
    assert CachedAnswer.decode(answer.encode()) == answer
    assert CachedAnswer.decode(b"not json") is None
    assert CachedAnswer.decode(b'{"body": {}}') is None


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> StreamChunk:
    choice = {"index": 0, "delta": delta, "finish_reason": finish, **extra}
    return StreamChunk.from_openai({"id": "c1", "created": 5, "model": "m", "choices": [choice]})


def test_a_stream_is_put_back_together_or_not_kept() -> None:
    collector = StreamCollector()
    collector.add(_chunk({"role": "assistant", "content": "Hel"}))
    collector.add(_chunk({"content": "lo"}))
    collector.add(_chunk({}, "stop"))
    body = collector.completion_body()
    assert body is not None and body["choices"][0]["message"]["content"] == "Hello"
    assert body["choices"][0]["finish_reason"] == "stop" and body["id"] == "c1"
    for spoiled in (
        _chunk({"thinking_blocks": [{"type": "thinking", "thinking": "hm"}]}),
        _chunk({"content": "x"}, logprobs={"content": []}),
    ):
        other = StreamCollector()
        other.add(_chunk({"content": "a"}))
        other.add(spoiled)
        other.add(_chunk({}, "stop"))
        assert other.completion_body() is None
    unfinished = StreamCollector()
    unfinished.add(_chunk({"content": "a"}))
    assert unfinished.completion_body() is None


def test_policy_ttl_forms() -> None:
    policy = load_policy_text(CACHED_POLICY.replace("{sim}", "http://127.0.0.1:1/v1"))
    assert policy.routes["cached"].cache is not None
    assert policy.routes["cached"].cache.ttl_s == 600.0
    assert policy.routes["sampled"].cache is not None
    assert policy.routes["sampled"].cache.allow_sampling
    assert policy.routes["plain"].cache is None
    for written, seconds in (("45", 45.0), ("500ms", 0.5), ("2h", 7200.0), ("1d", 86400.0)):
        text = CACHED_POLICY.replace("ttl: 10m", f"ttl: {written}")
        rule = load_policy_text(text.replace("{sim}", "http://x/v1")).routes["cached"].cache
        assert rule is not None and rule.ttl_s == seconds


@pytest.mark.parametrize("ttl", ["10 minutes", "-5s", "0", "31d", "true"])
def test_a_bad_ttl_is_reported_with_its_line(ttl: str) -> None:
    text = CACHED_POLICY.replace("ttl: 10m", f"ttl: {ttl}").replace("{sim}", "http://x/v1")
    with pytest.raises(PolicyError) as info:
        load_policy_text(text, "policy.yaml")
    line = next(i for i, s in enumerate(text.splitlines(), 1) if f"ttl: {ttl}" in s)
    rendered = [p.render() for p in info.value.problems]
    assert any(f"policy.yaml:{line}" in r and "ttl" in r for r in rendered), rendered


def test_the_cache_setting_is_part_of_the_policy_hash() -> None:
    base = CACHED_POLICY.replace("{sim}", "http://x/v1")
    longer = load_policy_text(base.replace("ttl: 10m", "ttl: 20m"))
    without = load_policy_text(base.replace("    cache: {ttl: 10m}\n", "", 1))
    hashes = {load_policy_text(base).hash, longer.hash, without.hash}
    assert len(hashes) == 3 and without.routes["cached"].cache is None
