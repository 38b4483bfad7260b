"""The simulator's Anthropic Messages wire, read with the official ``anthropic`` SDK and a
raw client: messages, stream events, limits, tool use."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import orjson

from .simulator_support import ANTHROPIC_TOOLS, FRANCE, WEATHER_ARGS, an_body, sse_events


async def test_anthropic_message_parses_in_sdk(ant: anthropic.AsyncAnthropic) -> None:
    question = "What is the capital of France?"
    raw = await ant.messages.with_raw_response.create(
        model="small",
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": question}],
    )
    assert raw.headers["x-sim-outcome"] == "ok"
    m = await raw.parse()
    assert m.type == "message"
    assert m.id.startswith("msg_")
    assert m.role == "assistant"
    assert m.model == "small-2024-08-06"
    assert m.content[0].type == "text"
    assert m.content[0].text == FRANCE
    assert m.stop_reason == "end_turn"
    assert m.stop_sequence is None
    # The system prompt counts as one more message in the estimate.
    assert m.usage.input_tokens == (len(question) + len("Be brief.")) // 4 + 8
    assert m.usage.output_tokens == len(FRANCE.split())
    assert m.usage.cache_read_input_tokens == 0
    assert m.usage.cache_creation_input_tokens == 0


async def test_anthropic_stream_parses_in_sdk(ant: anthropic.AsyncAnthropic) -> None:
    async with ant.messages.stream(
        model="small", max_tokens=64, messages=[{"role": "user", "content": "capital of France"}]
    ) as stream:
        pieces = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == FRANCE
    assert len(pieces) == len(FRANCE.split())
    assert final.content[0].type == "text" and final.content[0].text == FRANCE
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == len(FRANCE.split())


async def test_anthropic_stream_event_sequence(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/messages", json=an_body("capital of France", stream=True))
    names = [event for event, _ in sse_events(r.text)]
    n = len(FRANCE.split())
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * n,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    # Every event's JSON "type" repeats its SSE event name, as in the real API.
    assert all(orjson.loads(data)["type"] == event for event, data in sse_events(r.text))


async def test_anthropic_max_tokens_and_stop_sequence(ant: anthropic.AsyncAnthropic) -> None:
    messages: Any = [{"role": "user", "content": "capital of France"}]
    cut = await ant.messages.create(model="small", max_tokens=2, messages=messages)
    assert cut.stop_reason == "max_tokens"
    assert cut.content[0].type == "text" and cut.content[0].text == "Paris is"
    stopped = await ant.messages.create(
        model="small", max_tokens=64, messages=messages, stop_sequences=["capital"]
    )
    assert stopped.stop_reason == "stop_sequence"
    assert stopped.stop_sequence == "capital"
    assert stopped.content[0].type == "text" and stopped.content[0].text == "Paris is the "


async def test_anthropic_tool_use_round_trip(ant: anthropic.AsyncAnthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await ant.messages.create(
        model="small", max_tokens=64, tools=ANTHROPIC_TOOLS, messages=messages
    )
    assert first.stop_reason == "tool_use"
    block = first.content[0]
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert block.input == WEATHER_ARGS
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "22 C"}],
        },
    ]
    second = await ant.messages.create(
        model="small", max_tokens=64, tools=ANTHROPIC_TOOLS, messages=messages
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"
    assert second.content[0].text == "It is 22 degrees in Paris."


async def test_anthropic_streamed_tool_use(ant: anthropic.AsyncAnthropic) -> None:
    async with ant.messages.stream(
        model="small",
        max_tokens=64,
        tools=ANTHROPIC_TOOLS,
        messages=[{"role": "user", "content": "weather?"}],
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == WEATHER_ARGS
