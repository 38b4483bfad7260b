"""The simulator's Anthropic wire refuses what the real API refuses (unknown fields, thinking
budgets out of range, altered thinking blocks) and thinks when asked, plain and streamed."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import pytest

from modelroute.testing import Simulator

from .simulator_support import ANTHROPIC_TOOLS, CONFIG, FRANCE, WEATHER_ARGS

ASK: Any = [{"role": "user", "content": "capital of France"}]
THINK: Any = {"type": "enabled", "budget_tokens": 1024}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    """The shared config with room for a thinking budget in the context window."""
    config = copy.deepcopy(CONFIG)
    config["models"]["small"]["context_window"] = 200_000
    async with Simulator(config) as s:
        yield s


async def _refused(ant: anthropic.AsyncAnthropic, **request: Any) -> str:
    with pytest.raises(anthropic.BadRequestError) as caught:
        await ant.messages.create(model="small", messages=ASK, **request)
    body: Any = caught.value.body
    assert body["error"]["type"] == "invalid_request_error"
    return str(body["error"]["message"])


async def test_unknown_fields_are_refused(ant: anthropic.AsyncAnthropic) -> None:
    message = await _refused(ant, max_tokens=64, extra_body={"frobnicate": 1})
    assert message == "frobnicate: Extra inputs are not permitted"
    assert "top_k" in await _refused(ant, max_tokens=64, extra_body={"top_k": -1})
    assert "service_tier" in await _refused(ant, max_tokens=64, service_tier="fastest")  # type: ignore[arg-type]


async def test_thinking_budget_rules(ant: anthropic.AsyncAnthropic) -> None:
    low = await _refused(ant, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1023})
    assert "budget_tokens" in low and "1024" in low
    high = await _refused(ant, max_tokens=1024, thinking=THINK)
    assert "max_tokens" in high and "budget_tokens" in high
    assert "thinking" in await _refused(ant, max_tokens=4096, thinking={"type": "sometimes"})  # type: ignore[arg-type]
    hot = await _refused(ant, max_tokens=4096, thinking=THINK, extra_body={"temperature": 0.5})
    assert "temperature" in hot
    forced = await _refused(
        ant, max_tokens=4096, thinking=THINK, tools=ANTHROPIC_TOOLS, tool_choice={"type": "any"}
    )
    assert "tool_choice" in forced
    fine = await ant.messages.create(
        model="small", max_tokens=64, messages=ASK, thinking={"type": "disabled"}
    )
    assert [b.type for b in fine.content] == ["text"]


async def test_thinking_comes_first_and_counts_as_output(ant: anthropic.AsyncAnthropic) -> None:
    plain = await ant.messages.create(model="small", max_tokens=64, messages=ASK)
    thought = await ant.messages.create(
        model="small", max_tokens=2048, messages=ASK, thinking=THINK
    )
    assert [b.type for b in thought.content] == ["thinking", "text"]
    thinking = thought.content[0]
    assert thinking.type == "thinking" and thinking.thinking and thinking.signature
    assert thought.content[1].type == "text" and thought.content[1].text == FRANCE
    assert thought.usage.output_tokens > plain.usage.output_tokens
    async with ant.messages.stream(
        model="small", max_tokens=2048, messages=ASK, thinking=THINK
    ) as stream:
        deltas = [e.delta.type async for e in stream if e.type == "content_block_delta"]
        streamed = await stream.get_final_message()
    assert {"thinking_delta", "signature_delta", "text_delta"} == set(deltas)
    assert [b.model_dump() for b in streamed.content] == [b.model_dump() for b in thought.content]
    assert streamed.usage.output_tokens == thought.usage.output_tokens


async def test_a_tool_loop_with_thinking_needs_the_thinking_block_back(
    ant: anthropic.AsyncAnthropic,
) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    request: Any = {"model": "small", "max_tokens": 2048, "tools": ANTHROPIC_TOOLS}
    first = await ant.messages.create(messages=messages, thinking=THINK, **request)
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    call = first.content[1]
    assert call.type == "tool_use" and call.input == WEATHER_ARGS
    result = {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "22 C"}],
    }
    blocks = [b.model_dump(exclude_none=True) for b in first.content]
    without = [*messages, {"role": "assistant", "content": blocks[1:]}, result]
    with pytest.raises(anthropic.BadRequestError, match="must start with a thinking block"):
        await ant.messages.create(messages=without, thinking=THINK, **request)
    altered = [{**blocks[0], "thinking": blocks[0]["thinking"] + "!"}, blocks[1]]
    tampered = [*messages, {"role": "assistant", "content": altered}, result]
    with pytest.raises(anthropic.BadRequestError, match="signature"):
        await ant.messages.create(messages=tampered, thinking=THINK, **request)
    whole = [*messages, {"role": "assistant", "content": blocks}, result]
    second = await ant.messages.create(messages=whole, thinking=THINK, **request)
    assert second.content[-1].type == "text"
    assert second.content[-1].text == "It is 22 degrees in Paris."
