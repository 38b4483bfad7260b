"""The Anthropic front door end to end: a client's Messages request → canonical →
AnthropicProvider → the upstream simulator → back to the client, plain and streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from anthropic.types import Message

from modelroute.policy.compiled import Model
from modelroute.pricing import PriceTable
from modelroute.providers.anthropic import AnthropicProvider
from modelroute.providers.http import Transport
from modelroute.server.anthropic_front import (
    StreamToAnthropic,
    completion_to_message,
    messages_to_openai,
)
from modelroute.testing import Simulator

from ..providers.anthropic_wire_support import ANTHROPIC_WEATHER_TOOL as WEATHER
from .anthropic_front_support import sdk_final_message


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    config = {
        "models": {
            "claude-sim": {
                "tokens_per_second": 5000,
                "answers": [
                    {
                        "match": "weather",
                        "tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}},
                    }
                ],
                "default_answer": "Hello from the simulator.",
            }
        }
    }
    async with Simulator(config) as s:
        yield s


def claude(base_url: str) -> Model:
    return Model(
        name="claude",
        provider="anthropic",
        base_url=base_url,
        model_id="claude-sim",
        api_key_env=None,
        prices=PriceTable(
            input=3.0, output=15.0, cached_input=0.3, cache_write=3.75, source="policy"
        ),
        context_window=200_000,
        max_output_tokens=None,
        capabilities=frozenset(),
        latency_p50_ms=1.0,
        latency_p95_ms=2.0,
        quality={},
        floating=False,
    )


@pytest.mark.parametrize(("text", "kind"), [("hello", "text"), ("weather?", "tool_use")])
async def test_front_door_path_against_the_simulator(sim: Simulator, text: str, kind: str) -> None:
    """Client's Anthropic request → canonical → AnthropicProvider → simulator → client."""
    request = {
        "model": "claude-route",
        "max_tokens": 64,
        "tools": [WEATHER],
        "messages": [{"role": "user", "content": text}],
    }
    canonical = messages_to_openai(request)
    transport = Transport()
    provider = AnthropicProvider(transport)
    try:
        answer = await provider.complete(claude(sim.base_url), canonical, None)
        front = StreamToAnthropic("claude-route", "msg_e2e")
        raw = b"".join(
            [front.feed(c) async for c in provider.stream(claude(sim.base_url), canonical, None)]
        )
    finally:
        await transport.aclose()
    message = Message.model_validate(completion_to_message(answer, "claude-route"))
    streamed = await sdk_final_message(raw + front.finish())
    assert [b.type for b in message.content] == [kind]
    assert [b.type for b in streamed.content] == [kind]
    assert message.stop_reason == streamed.stop_reason
    assert message.usage.output_tokens == streamed.usage.output_tokens > 0
    if kind == "tool_use":
        assert streamed.content[0].input == {"city": "Paris"}  # type: ignore[union-attr]
    else:
        assert streamed.content[0].text == "Hello from the simulator."  # type: ignore[union-attr]
