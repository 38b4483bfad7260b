"""The Anthropic front door's streams: canonical chunks in, Messages stream events out.

Each event is checked with the official ``anthropic`` SDK's pydantic event types, and the
whole stream is read back with its real stream accumulator.
"""

from __future__ import annotations

from typing import Any

import anthropic
import orjson
import pytest
from anthropic.types import RawMessageStreamEvent
from pydantic import TypeAdapter

from modelroute.providers.anthropic_wire import StreamTranslator
from modelroute.server.anthropic_front import StreamToAnthropic, error_body
from modelroute.types import StreamChunk

from ..providers.anthropic_wire_support import RECORDED_STREAM
from .anthropic_front_support import sdk_final_message

EVENT = TypeAdapter(RawMessageStreamEvent)


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    usage: dict[str, Any] | None = None,
) -> StreamChunk:
    data: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-x",
    }
    data["choices"] = (
        [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    )
    if usage is not None:
        data["usage"] = usage
    return StreamChunk.from_openai(data)


def tool_delta(
    index: int, arguments: str, id: str | None = None, name: str | None = None
) -> dict[str, Any]:
    call: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if id is not None:
        call.update(id=id, type="function")
        call["function"]["name"] = name
    return {"tool_calls": [call]}


OPENAI_STREAM = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"content": "Let me"}),
    chunk({"content": " check."}),
    chunk(tool_delta(0, "", id="call_a", name="get_weather")),
    chunk(tool_delta(0, '{"city": ')),
    chunk(tool_delta(0, '"Paris"}')),
    chunk(tool_delta(1, '{"city": "Lyon"}', id="call_b", name="get_weather")),
    chunk({}, finish="tool_calls"),
    chunk(
        usage={
            "prompt_tokens": 900,
            "completion_tokens": 42,
            "total_tokens": 942,
            "prompt_tokens_details": {"cached_tokens": 800},
        }
    ),
]


def sse_events(raw: bytes) -> list[tuple[str, dict[str, Any]]]:
    """(event, data) for each frame; every frame must have exactly one of each."""
    events = []
    assert raw.endswith(b"\n\n")
    for frame in raw.strip(b"\n").split(b"\n\n"):
        event_line, data_line = frame.split(b"\n")
        assert event_line.startswith(b"event: ") and data_line.startswith(b"data: ")
        events.append((event_line[7:].decode(), orjson.loads(data_line[6:])))
    return events


def translate(chunks: list[StreamChunk]) -> bytes:
    translator = StreamToAnthropic("fallback-model", "msg_0123", input_tokens=7)
    return b"".join(translator.feed(c) for c in chunks) + translator.finish()


def test_stream_follows_anthropics_event_sequence() -> None:
    events = sse_events(translate(OPENAI_STREAM))
    for name, data in events:
        assert name == data["type"]
        if name != "ping":
            EVENT.validate_python(data)  # each is a valid RawMessageStreamEvent
    assert [(n, d.get("index")) for n, d in events] == [
        ("message_start", None),
        ("ping", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("message_delta", None),
        ("message_stop", None),
    ]
    start = events[0][1]["message"]
    # The model the upstream named in its chunks; the prompt's tokens as estimated.
    assert (start["id"], start["model"], start["content"]) == ("msg_0123", "gpt-x", [])
    assert start["usage"]["input_tokens"] == 7
    assert events[6][1]["content_block"] == {
        "type": "tool_use",
        "id": "call_a",
        "name": "get_weather",
        "input": {},
    }
    assert events[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 100,
            "output_tokens": 42,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 800,
        },
    }


async def test_official_sdk_accumulates_the_stream() -> None:
    final = await sdk_final_message(translate(OPENAI_STREAM))
    assert final.id == "msg_0123"
    assert [b.type for b in final.content] == ["text", "tool_use", "tool_use"]
    assert final.content[0].text == "Let me check."  # type: ignore[union-attr]
    assert final.content[1].input == {"city": "Paris"}  # type: ignore[union-attr]
    assert final.content[2].input == {"city": "Lyon"}  # type: ignore[union-attr]
    assert final.stop_reason == "tool_use"
    # Usage from the last (usage-only) chunk reaches the client through message_delta.
    assert (final.usage.input_tokens, final.usage.output_tokens) == (100, 42)
    assert final.usage.cache_read_input_tokens == 800


def test_usage_only_chunk_sets_message_delta_usage() -> None:
    with_usage = translate(
        [
            chunk({"content": "hi"}, finish="stop"),
            chunk(usage={"prompt_tokens": 7, "completion_tokens": 3}),
        ]
    )
    without = translate([chunk({"content": "hi"}, finish="stop")])
    assert sse_events(with_usage)[-2][1]["usage"]["output_tokens"] == 3
    assert sse_events(with_usage)[-2][1]["usage"]["input_tokens"] == 7
    assert sse_events(without)[-2][1]["usage"]["output_tokens"] == 0


async def test_empty_stream_still_ends_validly() -> None:
    raw = translate([])
    assert [n for n, _ in sse_events(raw)] == [
        "message_start",
        "ping",
        "message_delta",
        "message_stop",
    ]
    final = await sdk_final_message(raw)
    assert final.content == []
    assert final.stop_reason == "end_turn"


async def test_error_frame_raises_in_the_sdk() -> None:
    translator = StreamToAnthropic("m", "msg_1")
    raw = translator.feed(chunk({"content": "partial"})) + translator.error(
        "overloaded_error", "upstream overloaded"
    )
    name, data = sse_events(raw)[-1]
    assert (name, data) == ("error", error_body("overloaded_error", "upstream overloaded"))
    assert translator.finish() == b""  # the stream ended with the error
    assert translator.feed(chunk({"content": "late"})) == b""
    with pytest.raises(anthropic.APIStatusError) as caught:
        await sdk_final_message(raw)
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["error"]["type"] == "overloaded_error"


def test_finish_is_idempotent() -> None:
    translator = StreamToAnthropic("m", "msg_1")
    translator.feed(chunk({"content": "a"}))
    assert b"message_stop" in translator.finish()
    assert translator.finish() == b""


async def test_anthropic_to_openai_to_anthropic_stream_keeps_the_answer() -> None:
    """Upstream Claude events → canonical chunks → Claude events for the client: lossless."""
    upstream = StreamTranslator(created=1)
    front = StreamToAnthropic("support-triage", "msg_x")
    raw = b"".join(front.feed(c) for e, d in RECORDED_STREAM for c in upstream.feed(e, d))
    final = await sdk_final_message(raw + front.finish())
    assert final.content[0].text == "Okay, let's check the weather."  # type: ignore[union-attr]
    assert final.content[1].input == {  # type: ignore[union-attr]
        "location": "San Francisco, CA",
        "unit": "fahrenheit",
    }
    assert final.stop_reason == "tool_use"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (472, 89)
    assert final.usage.cache_read_input_tokens == 1024
