"""The response cache through the gateway, with the official ``openai`` SDK over real sockets
and the simulator upstream: plain and streamed hits in every combination, what is never
cached, the records and metrics of hits, and the TTL on an injected clock."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.cache import MemoryCache
from modelroute.records.metrics import MetricsSink

from ..gateway.fixtures import sdk_client, sim_config
from ..gateway.harness import Gateway, gateway
from .support import CACHED_POLICY

MESSAGES: list[Any] = [{"role": "user", "content": "What is the capital of France?"}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def upstream_calls(gw: Gateway) -> int:
    return len(gw.sim.requests())


async def _plain(gw: Gateway, **params: Any) -> Any:
    client = sdk_client(gw, timeout=20)
    params.setdefault("model", "cached")
    params.setdefault("messages", MESSAGES)
    return await client.chat.completions.with_raw_response.create(**params)


async def _streamed(gw: Gateway, **params: Any) -> tuple[dict[str, Any], Any]:
    """The stream's text, tool calls, finish reason and usage, and its response headers."""
    client = sdk_client(gw, timeout=20)
    params.setdefault("model", "cached")
    params.setdefault("messages", MESSAGES)
    raw = await client.chat.completions.with_raw_response.create(stream=True, **params)
    seen: dict[str, Any] = {"text": "", "finish": None, "usage": None, "tools": {}, "chunks": 0}
    async for chunk in raw.parse():
        seen["chunks"] += 1
        if chunk.usage is not None:
            seen["usage"] = chunk.usage.completion_tokens, chunk.usage.prompt_tokens
        for choice in chunk.choices:
            seen["text"] += choice.delta.content or ""
            for call in choice.delta.tool_calls or ():
                tool = seen["tools"].setdefault(call.index, {"name": "", "arguments": ""})
                if call.function is not None:
                    tool["name"] += call.function.name or ""
                    tool["arguments"] += call.function.arguments or ""
            seen["finish"] = choice.finish_reason or seen["finish"]
    return seen, raw.headers


async def test_a_repeat_is_answered_from_the_cache_at_no_cost() -> None:
    async with gateway(CACHED_POLICY, sim_config()) as gw:
        first = await _plain(gw, temperature=0)
        again = await _plain(gw, temperature=0, user="someone-else", metadata={"k": "v"})
        assert first.headers["x-modelroute-cache"] == "miss"
        assert again.headers["x-modelroute-cache"] == "hit"
        assert again.headers["x-modelroute-attempts"] == "0"
        assert again.headers["x-modelroute-model"] == "primary"
        assert again.parse().model_dump() == first.parse().model_dump()
        assert upstream_calls(gw) == 1
        made = gw.record(first.headers["x-modelroute-request-id"])
        hit = gw.record(again.headers["x-modelroute-request-id"])
        assert made.cache_hit is False and made.cost_usd > 0
        assert hit.cache_hit is True and hit.status == "ok" and hit.attempts == []
        assert hit.cost_usd == 0 and hit.usage is None
        assert hit.cache_saved_usd == pytest.approx(made.cost_usd)
        assert hit.final_model == "primary" and hit.answer == "Paris"
        assert hit.final_reported_model == "primary-sim-2024-08-06"


async def test_a_plain_answer_replays_as_a_stream_with_its_usage() -> None:
    async with gateway(CACHED_POLICY, sim_config()) as gw:
        plain = (await _plain(gw, temperature=0)).parse()
        seen, headers = await _streamed(gw, temperature=0, stream_options={"include_usage": True})
        assert headers["x-modelroute-cache"] == "hit"
        assert seen["text"] == plain.choices[0].message.content == "Paris"
        assert seen["finish"] == plain.choices[0].finish_reason == "stop"
        assert plain.usage is not None
        assert seen["usage"] == (plain.usage.completion_tokens, plain.usage.prompt_tokens)
        without_usage, _ = await _streamed(gw, temperature=0)
        assert without_usage["usage"] is None and without_usage["text"] == "Paris"
        assert upstream_calls(gw) == 1
        record = gw.record(headers["x-modelroute-request-id"])
        assert record.streamed and record.cache_hit and record.ttft_ms is not None


async def test_a_streamed_answer_is_kept_and_answers_plain_and_streamed() -> None:
    async with gateway(CACHED_POLICY, sim_config()) as gw:
        live, headers = await _streamed(gw, temperature=0, stream_options={"include_usage": True})
        assert headers["x-modelroute-cache"] == "miss" and live["chunks"] > 2
        assert gw.record(headers["x-modelroute-request-id"]).cache_hit is False
        plain = await _plain(gw, temperature=0)
        assert plain.headers["x-modelroute-cache"] == "hit"
        answer = plain.parse()
        assert answer.choices[0].message.content == live["text"] == "Paris"
        assert answer.choices[0].finish_reason == live["finish"]
        assert answer.usage is not None
        assert (answer.usage.completion_tokens, answer.usage.prompt_tokens) == live["usage"]
        usage = {"include_usage": True}
        replay, replayed = await _streamed(gw, temperature=0, stream_options=usage)
        assert replayed["x-modelroute-cache"] == "hit"
        assert (replay["text"], replay["finish"], replay["usage"]) == (
            live["text"], live["finish"], live["usage"]
        )  # fmt: skip
        assert upstream_calls(gw) == 1
        made = gw.record(headers["x-modelroute-request-id"])
        hit = gw.record(plain.headers["x-modelroute-request-id"])
        assert hit.cache_saved_usd == pytest.approx(made.cost_usd) and made.cost_usd > 0


async def test_tool_calls_survive_both_ways() -> None:
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    async with gateway(CACHED_POLICY, sim_config()) as gw:
        live, _ = await _streamed(gw, temperature=0, messages=ask, tools=TOOLS)
        assert live["finish"] == "tool_calls" and live["tools"][0]["name"] == "get_weather"
        plain = await _plain(gw, temperature=0, messages=ask, tools=TOOLS)
        assert plain.headers["x-modelroute-cache"] == "hit"
        message = plain.parse().choices[0].message
        assert message.tool_calls is not None and len(message.tool_calls) == 1
        call = message.tool_calls[0]
        assert call.function.name == "get_weather"
        assert call.function.arguments == live["tools"][0]["arguments"]
        assert plain.parse().choices[0].finish_reason == "tool_calls"
        replay, _ = await _streamed(gw, temperature=0, messages=ask, tools=TOOLS)
        assert replay["tools"] == live["tools"] and replay["finish"] == "tool_calls"
        assert upstream_calls(gw) == 1


async def test_what_is_never_answered_from_the_cache() -> None:
    async with gateway(CACHED_POLICY, sim_config()) as gw:
        for _ in range(2):  # sampling: temperature unset, or above 0
            unset = await _plain(gw)
            warm = await _plain(gw, temperature=0.7)
            assert "x-modelroute-cache" not in unset.headers
            assert "x-modelroute-cache" not in warm.headers
            several = await _plain(gw, temperature=0, n=2)
            assert "x-modelroute-cache" not in several.headers
            uncached_route = await _plain(gw, model="plain", temperature=0)
            assert "x-modelroute-cache" not in uncached_route.headers
        assert upstream_calls(gw) == 8
        assert all(r.cache_hit is None for r in gw.records())


async def test_generation_fields_are_in_the_key_and_the_rest_are_not() -> None:
    async with gateway(CACHED_POLICY, sim_config()) as gw:
        assert (await _plain(gw, temperature=0)).headers["x-modelroute-cache"] == "miss"
        assert (await _plain(gw, temperature=0.0)).headers["x-modelroute-cache"] == "hit"
        for changed in ({"max_tokens": 5}, {"seed": 7}, {"stop": ["x"]}, {"top_p": 0.5}):
            raw = await _plain(gw, temperature=0, **changed)
            assert raw.headers["x-modelroute-cache"] == "miss", changed
        other = [{"role": "system", "content": "Be brief."}, *MESSAGES]
        assert (await _plain(gw, temperature=0, messages=other)).headers[
            "x-modelroute-cache"
        ] == "miss"
        assert upstream_calls(gw) == 6


async def test_sampled_requests_are_cached_where_the_route_allows_it() -> None:
    async with gateway(CACHED_POLICY, sim_config()) as gw:
        first = await _plain(gw, model="sampled", temperature=0.9)
        again = await _plain(gw, model="sampled", temperature=0.9)
        unset = await _plain(gw, model="sampled")
        assert (first.headers["x-modelroute-cache"], again.headers["x-modelroute-cache"]) == (
            "miss", "hit"
        )  # fmt: skip
        assert unset.headers["x-modelroute-cache"] == "miss"  # another key: no temperature
        assert upstream_calls(gw) == 2


async def test_the_request_may_skip_or_refresh_the_cache() -> None:
    async with gateway(CACHED_POLICY, sim_config()) as gw:
        await _plain(gw, temperature=0)
        off = await _plain(gw, temperature=0, extra_headers={"x-modelroute-cache": "off"})
        assert "x-modelroute-cache" not in off.headers
        assert gw.record(off.headers["x-modelroute-request-id"]).cache_hit is None
        gw.sim.update_model("primary-sim", default_answer="changed", answers=[])
        fresh = await _plain(gw, temperature=0, extra_headers={"x-modelroute-cache": "refresh"})
        assert fresh.headers["x-modelroute-cache"] == "miss"
        assert fresh.parse().choices[0].message.content == "changed"
        later = await _plain(gw, temperature=0)
        assert later.headers["x-modelroute-cache"] == "hit"
        assert later.parse().choices[0].message.content == "changed"
        assert upstream_calls(gw) == 3


async def test_entries_expire_after_the_ttl_on_the_injected_clock() -> None:
    clock = FakeClock()
    cache = MemoryCache(clock=clock)
    async with gateway(CACHED_POLICY, sim_config(), cache=cache) as gw:
        assert (await _plain(gw, temperature=0)).headers["x-modelroute-cache"] == "miss"
        clock.now += 599.0  # ttl: 10m
        assert (await _plain(gw, temperature=0)).headers["x-modelroute-cache"] == "hit"
        clock.now += 1.5
        assert (await _plain(gw, temperature=0)).headers["x-modelroute-cache"] == "miss"
        assert (await _plain(gw, temperature=0)).headers["x-modelroute-cache"] == "hit"
        assert upstream_calls(gw) == 2 and len(cache) == 1


async def test_hits_and_savings_are_counted_in_the_metrics() -> None:
    metrics = MetricsSink(multiprocess=False)
    async with gateway(CACHED_POLICY, sim_config(), sinks=[metrics]) as gw:
        first = await _plain(gw, temperature=0)
        for _ in range(3):
            await _plain(gw, temperature=0)
        await _streamed(gw, temperature=0)
        await _plain(gw, model="plain", temperature=0)
        cost = gw.record(first.headers["x-modelroute-request-id"]).cost_usd
        text = metrics.render()[0].decode()
    hits = 'modelroute_cache_requests_total{model="primary",result="hit",route="cached"} 4.0'
    misses = 'modelroute_cache_requests_total{model="primary",result="miss",route="cached"} 1.0'
    assert hits in text and misses in text
    assert 'route="plain"' not in "".join(
        line for line in text.splitlines() if line.startswith("modelroute_cache")
    )
    saved = next(
        line for line in text.splitlines()
        if line.startswith('modelroute_cache_saved_usd_total{model="primary",route="cached"}')
    )  # fmt: skip
    assert float(saved.split()[-1]) == pytest.approx(4 * cost)
    # a hit spends nothing: the cost counter holds the one miss only
    spent = next(
        line for line in text.splitlines()
        if line.startswith('modelroute_cost_usd_total{model="primary",route="cached"}')
    )  # fmt: skip
    assert float(spent.split()[-1]) == pytest.approx(cost)
