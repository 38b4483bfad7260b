"""Shared data for the Anthropic translation tests (``tests/providers`` and the front door's in
``tests/server``): the weather tool in both wire formats and a recorded Messages stream."""

from __future__ import annotations

from typing import Any

CREATED = 1_700_000_123

# The same tool, as an OpenAI Chat Completions client declares it and as Anthropic takes it.
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
ANTHROPIC_WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def stream_event(name: str, **fields: Any) -> tuple[str, dict[str, Any]]:
    """One Messages stream event as (SSE event name, data); as in the real API, the data's
    ``type`` repeats the event name."""
    return name, {"type": name, **fields}


# A recorded-shape stream as the real API sends it: text, then a tool_use whose input arrives
# in fragments (the first one empty), pings, and cumulative usage in message_delta.
RECORDED_STREAM: list[tuple[str, dict[str, Any]]] = [
    stream_event(
        "message_start",
        message={
            "id": "msg_014p7gG3wDgGV9EUtLvnow3U",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5-20250929",
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {
                "input_tokens": 472,
                "output_tokens": 2,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 1024,
            },
        },
    ),
    stream_event("content_block_start", index=0, content_block={"type": "text", "text": ""}),
    stream_event("ping"),
    stream_event(
        "content_block_delta", index=0, delta={"type": "text_delta", "text": "Okay, let's check"}
    ),
    stream_event(
        "content_block_delta", index=0, delta={"type": "text_delta", "text": " the weather."}
    ),
    stream_event("content_block_stop", index=0),
    stream_event(
        "content_block_start",
        index=1,
        content_block={
            "type": "tool_use",
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "name": "get_weather",
            "input": {},
        },
    ),
    stream_event(
        "content_block_delta", index=1, delta={"type": "input_json_delta", "partial_json": ""}
    ),
    stream_event(
        "content_block_delta",
        index=1,
        delta={"type": "input_json_delta", "partial_json": '{"location": "San Fra'},
    ),
    stream_event(
        "content_block_delta",
        index=1,
        delta={"type": "input_json_delta", "partial_json": 'ncisco, CA", "unit": "fahrenheit"}'},
    ),
    stream_event("content_block_stop", index=1),
    stream_event(
        "message_delta",
        delta={"stop_reason": "tool_use", "stop_sequence": None},
        usage={"output_tokens": 89},
    ),
    stream_event("message_stop"),
]
