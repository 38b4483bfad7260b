"""Anthropic Messages stream events → OpenAI Chat Completions chunks.

The official ``openai`` SDK's chunk model and its own stream accumulator read what we produce,
so "looks right to us" is backed by "parses in the client people actually use".
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from modelroute.failures import FailureClass, classify
from modelroute.providers.anthropic_wire import StreamTranslator
from modelroute.types import StreamChunk, UpstreamError, Usage

from .anthropic_wire_support import CREATED, RECORDED_STREAM, stream_event


def translate(
    events: list[tuple[str, dict[str, Any]]],
) -> tuple[StreamTranslator, list[StreamChunk]]:
    translator = StreamTranslator(created=CREATED)
    chunks = [c for event, data in events for c in translator.feed(event, data)]
    return translator, chunks


def test_recorded_stream_translates_to_openai_chunks() -> None:
    translator, chunks = translate(RECORDED_STREAM)
    assert translator.done
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk.data)
        assert chunk.raw is None
        assert chunk.data["id"] == "msg_014p7gG3wDgGV9EUtLvnow3U"
        assert chunk.data["created"] == CREATED
    assert chunks[0].data["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert "".join(c.content for c in chunks) == "Okay, let's check the weather."
    tool_chunks = [c for c in chunks if c.tool_call]
    assert tool_chunks[0].data["choices"][0]["delta"]["tool_calls"] == [
        {
            "index": 0,
            "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
            "type": "function",
            "function": {"name": "get_weather", "arguments": ""},
        }
    ]
    # The empty fragment sends nothing; the others arrive in order on the same call index.
    assert len(tool_chunks) == 3
    arguments = "".join(
        c.data["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"] for c in tool_chunks
    )
    assert orjson.loads(arguments) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]
    final = chunks[-1]
    assert final.data["choices"] == []
    assert final.usage == Usage(input_tokens=1496, output_tokens=89, cached_input_tokens=1024)
    assert final.data["usage"]["prompt_tokens"] == 1496


def test_openai_sdk_accumulates_the_translated_stream() -> None:
    """The openai SDK's own stream accumulator rebuilds the whole answer from our chunks."""
    _, chunks = translate(RECORDED_STREAM)
    state: ChatCompletionStreamState[None] = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.model_validate(chunk.data))
    final = state.get_final_completion()
    choice = final.choices[0]
    assert choice.message.content == "Okay, let's check the weather."
    assert choice.finish_reason == "tool_calls"
    [call] = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {
        "location": "San Francisco, CA",
        "unit": "fahrenheit",
    }
    assert final.usage is not None and final.usage.completion_tokens == 89


def test_two_tool_calls_get_their_own_indexes() -> None:
    events = [RECORDED_STREAM[0]]
    for block in (0, 1):
        events += [
            stream_event(
                "content_block_start",
                index=block,
                content_block={"type": "tool_use", "id": f"t{block}", "name": "f", "input": {}},
            ),
            stream_event(
                "content_block_delta",
                index=block,
                delta={"type": "input_json_delta", "partial_json": f'{{"n": {block}}}'},
            ),
            stream_event("content_block_stop", index=block),
        ]
    _, chunks = translate(events)
    calls = [c.data["choices"][0]["delta"]["tool_calls"][0] for c in chunks if c.tool_call]
    assert [(c["index"], c.get("id")) for c in calls] == [
        (0, "t0"),
        (0, None),
        (1, "t1"),
        (1, None),
    ]


def test_message_delta_usage_replaces_cumulative_totals() -> None:
    events = [
        RECORDED_STREAM[0],
        stream_event(
            "message_delta",
            delta={"stop_reason": "end_turn"},
            usage={
                "output_tokens": 10,
                "input_tokens": 500,
                "cache_creation_input_tokens": 40,
                "cache_read_input_tokens": None,
            },
        ),
        stream_event("message_stop"),
    ]
    translator, chunks = translate(events)
    # input_tokens replaced (500), cache reads kept from message_start (None is "not given").
    assert chunks[-1].usage == Usage(
        input_tokens=1564, output_tokens=10, cached_input_tokens=1024, cache_write_tokens=40
    )
    assert translator.usage == chunks[-1].usage
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]


def test_thinking_blocks_stream_as_thinking_block_pieces() -> None:
    events = [
        RECORDED_STREAM[0],
        stream_event(
            "content_block_start", index=0, content_block={"type": "thinking", "thinking": ""}
        ),
        stream_event(
            "content_block_delta", index=0, delta={"type": "thinking_delta", "thinking": "secret"}
        ),
        stream_event(
            "content_block_delta", index=0, delta={"type": "signature_delta", "signature": "s"}
        ),
        stream_event("content_block_stop", index=0),
        stream_event(
            "content_block_start",
            index=1,
            content_block={"type": "redacted_thinking", "data": "xx"},
        ),
        stream_event("some_new_event"),
    ]
    translator, chunks = translate(events)
    pieces = [c.data["choices"][0]["delta"]["thinking_blocks"] for c in chunks[1:]]
    assert pieces == [
        [{"index": 0, "type": "thinking", "thinking": "secret"}],
        [{"index": 0, "type": "thinking", "signature": "s"}],
        [{"index": 1, "type": "redacted_thinking", "data": "xx"}],
    ]
    assert all(c.thinking and c.has_output and not c.content for c in chunks[1:])
    assert not translator.done


def test_event_name_falls_back_to_the_data_type() -> None:
    translator = StreamTranslator(created=CREATED)
    translator.feed("", RECORDED_STREAM[0][1])
    assert translator.feed("", {"type": "message_stop"})[0].data["choices"] == []
    assert translator.done


def test_error_event_raises_with_the_event_as_body() -> None:
    translator = StreamTranslator(created=CREATED)
    translator.feed(*RECORDED_STREAM[0])
    event = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(UpstreamError) as caught:
        translator.feed("error", event)
    error = caught.value
    assert error.note == "stream_error_event"
    assert error.status == 0
    assert orjson.loads(error.body) == event
    assert classify(error).cls is FailureClass.OVERLOADED
    assert not translator.done
