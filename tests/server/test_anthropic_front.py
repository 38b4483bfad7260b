"""The Anthropic front door's translation: requests in, Messages and stream events out.

What we emit is read back with the official ``anthropic`` SDK (its pydantic event types and
its real stream accumulator, fed through an in-process transport) to prove a client would
accept it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import httpx2
import orjson
import pytest
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

from modelroute.policy.compiled import Model
from modelroute.pricing import PriceTable
from modelroute.providers.anthropic import AnthropicProvider
from modelroute.providers.anthropic_wire import StreamTranslator, to_anthropic_request
from modelroute.providers.http import Transport
from modelroute.server.anthropic_front import (
    StreamToAnthropic,
    completion_to_message,
    error_body,
    messages_to_openai,
)
from modelroute.testing import Simulator
from modelroute.types import Completion, StreamChunk, Usage

from ..providers.test_anthropic_wire import RECORDED_STREAM

EVENT = TypeAdapter(RawMessageStreamEvent)
PNG = "iVBORw0KGgo="
WEATHER = {
    "name": "get_weather",
    "description": "Current weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


# -- requests ----------------------------------------------------------------------------------


def rich_request(**extra: Any) -> dict[str, Any]:
    return {
        "model": "support-triage",
        "max_tokens": 512,
        "system": "You are terse.",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this, and the weather?"},
                    {
                        "type": "image",
                        "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                    },
                    {"type": "image", "source": {"type": "url", "url": "https://x.io/a.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {
                        "type": "tool_use",
                        "id": "toolu_1",
                        "name": "get_weather",
                        "input": {"city": "Paris"},
                    },
                    {
                        "type": "tool_use",
                        "id": "toolu_2",
                        "name": "get_weather",
                        "input": {"city": "Lyon"},
                    },
                ],
            },
            {
                "role": "user",
                "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": "22C"},
                    {
                        "type": "tool_result",
                        "tool_use_id": "toolu_2",
                        "content": [{"type": "text", "text": "18C"}],
                    },
                    {"type": "text", "text": "Which is warmer?"},
                ],
            },
        ],
        "tools": [WEATHER],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
        "stop_sequences": ["END"],
        "temperature": 0.3,
        "top_p": 0.8,
        "metadata": {"user_id": "u-1"},
        "stream": True,
        **extra,
    }


def test_rich_request_becomes_the_canonical_body() -> None:
    body = messages_to_openai(rich_request(top_k=20, thinking={"type": "enabled"}))
    assert body == {
        "model": "support-triage",
        "max_tokens": 512,
        "messages": [
            {"role": "system", "content": "You are terse."},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this, and the weather?"},
                    {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                    {"type": "image_url", "image_url": {"url": "https://x.io/a.jpg"}},
                ],
            },
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [
                    {
                        "id": "toolu_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                    },
                    {
                        "id": "toolu_2",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"city":"Lyon"}'},
                    },
                ],
            },
            # Tool results first, as separate tool messages, then the user's own text.
            {"role": "tool", "tool_call_id": "toolu_1", "content": "22C"},
            {
                "role": "tool",
                "tool_call_id": "toolu_2",
                "content": [{"type": "text", "text": "18C"}],
            },
            {"role": "user", "content": "Which is warmer?"},
        ],
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather in a city.",
                    "parameters": WEATHER["input_schema"],
                },
            }
        ],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "stop": ["END"],
        "temperature": 0.3,
        "top_p": 0.8,
        "stream": True,
        "metadata": {"user_id": "u-1"},
        # top_k and thinking have no OpenAI equivalent and OpenAI rejects unknown fields.
    }


def test_round_trip_anthropic_canonical_anthropic_is_exact() -> None:
    request = rich_request()
    assert to_anthropic_request(messages_to_openai(request), "support-triage") == request


def test_system_blocks_keep_cache_control() -> None:
    cached = {"type": "text", "text": "policy", "cache_control": {"type": "ephemeral"}}
    body = messages_to_openai(
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [{"role": "user", "content": "hi"}],
            "system": [{"type": "text", "text": "one"}, cached],
        }
    )
    assert body["messages"][:2] == [
        {"role": "system", "content": "one"},
        {"role": "system", "content": [cached]},
    ]
    assert to_anthropic_request(body, "m")["system"] == [{"type": "text", "text": "one"}, cached]


def test_thinking_blocks_from_earlier_turns_are_dropped() -> None:
    body = messages_to_openai(
        {
            "model": "m",
            "max_tokens": 5,
            "messages": [
                {"role": "user", "content": "hi"},
                {
                    "role": "assistant",
                    "content": [
                        {"type": "thinking", "thinking": "hmm", "signature": "s"},
                        {"type": "redacted_thinking", "data": "xx"},
                        {"type": "text", "text": "Hello"},
                    ],
                },
                {"role": "user", "content": "again"},
            ],
        }
    )
    assert body["messages"][1] == {"role": "assistant", "content": "Hello"}


@pytest.mark.parametrize(
    ("choice", "expected", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
            None,
        ),
        ({"type": "any", "disable_parallel_tool_use": True}, "required", False),
    ],
)
def test_tool_choice(choice: dict[str, Any], expected: Any, parallel: bool | None) -> None:
    body = messages_to_openai(
        {
            "model": "m",
            "max_tokens": 5,
            "tools": [WEATHER],
            "tool_choice": choice,
            "messages": [{"role": "user", "content": "x"}],
        }
    )
    assert body["tool_choice"] == expected
    assert body.get("parallel_tool_calls") == parallel


def _body(messages: Any = None, **extra: Any) -> dict[str, Any]:
    default = [{"role": "user", "content": "x"}]
    return {
        "model": "m",
        "max_tokens": 5,
        "messages": default if messages is None else messages,
        **extra,
    }


@pytest.mark.parametrize(
    ("body", "match"),
    [
        ([], "body"),
        ({"model": "m", "max_tokens": 5}, "messages"),
        (_body([]), "messages"),
        ({"max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}, "model"),
        ({"model": "m", "messages": [{"role": "user", "content": "x"}]}, "max_tokens"),
        (_body(max_tokens="5"), "max_tokens"),
        (_body([{"role": "system", "content": "x"}]), "role"),
        (_body(["hello"]), "messages.0"),
        (_body([{"role": "user", "content": 5}]), "content"),
        (_body([{"role": "user", "content": []}]), "content"),
        (_body([{"role": "user", "content": [{"text": "no type"}]}]), "type"),
        (_body([{"role": "user", "content": [{"type": "document", "source": {}}]}]), "document"),
        (
            _body(
                [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}]
            ),
            "tool_result",
        ),
        (
            _body(
                [
                    {
                        "role": "user",
                        "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}],
                    }
                ]
            ),
            "source",
        ),
        (
            _body(
                [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "tool_result",
                                "tool_use_id": "t",
                                "content": [{"type": "image", "source": {}}],
                            }
                        ],
                    }
                ]
            ),
            "only text",
        ),
        (_body([{"role": "user", "content": [{"type": "tool_result"}]}]), "tool_use_id"),
        (
            _body(
                [
                    {
                        "role": "assistant",
                        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": "x"}],
                    }
                ]
            ),
            "input",
        ),
        (_body(system=5), "system"),
        (_body(system=[{"type": "image"}]), "system.0"),
        (_body(stop_sequences="END"), "stop_sequences"),
        (_body(temperature="hot"), "temperature"),
        (_body(metadata="x"), "metadata"),
        (_body(tools={"name": "x"}), "tools"),
        (_body(tools=[{"name": "f"}]), "input_schema"),
        (_body(tools=[{"type": "web_search_20250305", "name": "web_search"}]), "server tool"),
        (_body(tools=[WEATHER], tool_choice={"type": "sometimes"}), "tool_choice"),
    ],
)
def test_invalid_requests_raise_value_error(body: Any, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        messages_to_openai(body)


# -- complete answers -------------------------------------------------------------------------


def completion(
    message: dict[str, Any],
    finish: str = "stop",
    usage: Usage | None = None,
    id: str = "chatcmpl-abc123",
) -> Completion:
    body = {
        "id": id,
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-x",
        "choices": [
            {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
        ],
    }
    result = Completion.from_openai(body)
    result.usage = usage
    return result


def test_text_completion_becomes_a_message() -> None:
    usage = Usage(
        input_tokens=1000, output_tokens=20, cached_input_tokens=600, cache_write_tokens=100
    )
    message = completion_to_message(completion({"content": "Bonjour"}, usage=usage), "triage")
    Message.model_validate(message)  # the anthropic SDK accepts it as a Message
    assert message == {
        "id": "msg_abc123",
        "type": "message",
        "role": "assistant",
        "model": "triage",
        "content": [{"type": "text", "text": "Bonjour"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 300,
            "output_tokens": 20,
            "cache_creation_input_tokens": 100,
            "cache_read_input_tokens": 600,
        },
    }


def test_tool_calls_become_tool_use_blocks() -> None:
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
        },
        {"id": "call_2", "type": "function", "function": {"name": "now", "arguments": "{oops"}},
    ]
    result = completion({"content": None, "tool_calls": calls}, finish="tool_calls")
    message = completion_to_message(result, "m")
    parsed = Message.model_validate(message)
    assert [b.type for b in parsed.content] == ["tool_use", "tool_use"]
    assert message["content"][0] == {
        "type": "tool_use",
        "id": "call_1",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert message["content"][1]["input"] == {}  # a model's malformed JSON: still an object
    assert message["stop_reason"] == "tool_use"
    assert message["usage"]["input_tokens"] == 0  # no usage reported: zeros, not a crash


@pytest.mark.parametrize(
    ("finish", "tools", "stop_reason"),
    [
        ("stop", False, "end_turn"),
        ("length", False, "max_tokens"),
        ("tool_calls", True, "tool_use"),
        ("content_filter", False, "refusal"),
        ("function_call", True, "tool_use"),
        (None, False, "end_turn"),
        ("something_new", False, "end_turn"),
        ("stop", True, "tool_use"),  # servers that say "stop" after a tool call
        ("length", True, "max_tokens"),  # cut short: the call may be incomplete
    ],
)
def test_stop_reasons(finish: str | None, tools: bool, stop_reason: str) -> None:
    message: dict[str, Any] = {"content": "x"}
    if tools:
        message["tool_calls"] = [
            {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ]
    result = completion(message, finish=finish)  # type: ignore[arg-type]
    assert completion_to_message(result, "m")["stop_reason"] == stop_reason


@pytest.mark.parametrize(
    ("openai_id", "expected"),
    [
        ("chatcmpl-xyz", "msg_xyz"),
        ("msg_keep", "msg_keep"),
        ("abc", "msg_abc"),
        ("", "msg_unknown"),
    ],
)
def test_message_ids(openai_id: str, expected: str) -> None:
    assert completion_to_message(completion({"content": "x"}, id=openai_id), "m")["id"] == expected


def test_error_body() -> None:
    assert error_body("overloaded_error", "Overloaded") == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }


# -- streams ------------------------------------------------------------------------------------


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
    translator = StreamToAnthropic("support-triage", "msg_0123")
    return b"".join(translator.feed(c) for c in chunks) + translator.finish()


async def sdk_final_message(raw: bytes) -> Message:
    """Serve ``raw`` as a streamed /v1/messages answer and let the SDK accumulate it."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=raw, headers={"content-type": "text/event-stream"})

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    client = anthropic.AsyncAnthropic(api_key="k", http_client=http, max_retries=0)
    try:
        async with client.messages.stream(
            model="support-triage", max_tokens=64, messages=[{"role": "user", "content": "x"}]
        ) as stream:
            return await stream.get_final_message()
    finally:
        await client.close()


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
    assert (start["id"], start["model"], start["content"]) == ("msg_0123", "support-triage", [])
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


# -- end to end through the simulator ---------------------------------------------------------


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
