"""Anthropic Messages ⇄ OpenAI Chat Completions translation, both ways, plain and streamed.

The official SDKs' own models (``openai.types.chat``, ``anthropic.types``) check the shapes we
produce, so "looks right to us" is backed by "parses in the client people actually use".
"""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest
from anthropic.types import message_create_params
from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from modelroute.failures import FailureClass, classify
from modelroute.providers.anthropic_wire import (
    DEFAULT_MAX_TOKENS,
    StreamTranslator,
    from_anthropic_message,
    to_anthropic_request,
)
from modelroute.server.anthropic_front import messages_to_openai
from modelroute.types import StreamChunk, UpstreamError, Usage

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5Er"
    "kJggg=="
)
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
CREATED = 1_700_000_123


def rich_conversation() -> list[dict[str, Any]]:
    """System prompts, images both ways, parallel tool calls and their results."""
    return [
        {"role": "system", "content": "You are terse."},
        {"role": "system", "content": "Answer in French."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these pictures, and the weather?"},
                {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_2",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Lyon"}'},
                },
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "22C"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "18C"}]},
        {"role": "user", "content": "Thanks. Which is warmer?"},
    ]


def rich_body(**extra: Any) -> dict[str, Any]:
    return {
        "model": "support-triage",
        "messages": rich_conversation(),
        "tools": [WEATHER_TOOL],
        "tool_choice": "auto",
        **extra,
    }


# -- canonical -> Anthropic ------------------------------------------------------------------


# What rich_body() with the extras of the next test must become.
RICH_ANTHROPIC: dict[str, Any] = {
    "model": "claude-sonnet-4-5",
    "max_tokens": 300,
    "system": [
        {"type": "text", "text": "You are terse."},
        {"type": "text", "text": "Answer in French."},
    ],
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in these pictures, and the weather?"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": PNG},
                },
                {
                    "type": "image",
                    "source": {"type": "url", "url": "https://example.com/cat.jpg"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {
                    "type": "tool_use",
                    "id": "call_2",
                    "name": "get_weather",
                    "input": {"city": "Lyon"},
                },
            ],
        },
        {
            # Both tool results and the user's follow-up share one user turn, results first.
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "22C"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "18C"}],
                },
                {"type": "text", "text": "Thanks. Which is warmer?"},
            ],
        },
    ],
    "tools": [
        {
            "name": "get_weather",
            "description": "Current weather in a city.",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ],
    "tool_choice": {"type": "auto", "disable_parallel_tool_use": True},
    "stop_sequences": ["END"],
    # temperature 1.5 is above Anthropic's range: clamped to 1, its default, so omitted.
    "top_p": 0.9,
    "metadata": {"user_id": "u-42"},
    "stream": True,
}


def test_rich_conversation_translates_to_a_messages_request() -> None:
    body = rich_body(
        max_completion_tokens=300,
        stop="END",
        temperature=1.5,
        top_p=0.9,
        user="u-42",
        parallel_tool_calls=False,
        stream=True,
        # Fields Anthropic rejects or that are ours only: all must go.
        n=2,
        logprobs=True,
        top_logprobs=3,
        response_format={"type": "json_object"},
        seed=7,
        presence_penalty=0.5,
        frequency_penalty=0.5,
        stream_options={"include_usage": True},
        metadata={"task": "triage", "tenant": "acme"},
    )
    assert to_anthropic_request(body, "claude-sonnet-4-5") == RICH_ANTHROPIC


def test_request_uses_only_fields_the_anthropic_api_defines() -> None:
    request = to_anthropic_request(rich_body(n=3, seed=1, logprobs=True, stop=["a"]), "m")
    params = message_create_params.MessageCreateParamsStreaming
    # anthropic 1.0 dropped the sampling fields from its typed signature; the API still takes
    # them on models that sample, and the SDK's migration guide sends them via extra_body.
    sampling = {"temperature", "top_p", "top_k"}
    known = set(params.__required_keys__) | set(params.__optional_keys__) | sampling
    assert set(request) <= known
    assert {"n", "seed", "logprobs"}.isdisjoint(request)


def test_round_trip_canonical_anthropic_canonical_keeps_the_conversation() -> None:
    body = rich_body(max_tokens=256, stop=["END", "STOP"], temperature=0.4, top_p=0.5)
    back = messages_to_openai(to_anthropic_request(body, "claude-x"))
    assert back["messages"] == rich_conversation()
    assert back["tools"] == [WEATHER_TOOL]
    assert back["tool_choice"] == "auto"
    assert (back["max_tokens"], back["stop"]) == (256, ["END", "STOP"])
    assert (back["temperature"], back["top_p"]) == (0.4, 0.5)


def test_developer_messages_and_one_system_prompt() -> None:
    one = to_anthropic_request(
        {
            "messages": [
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": "hi"},
            ]
        },
        "m",
    )
    assert one["system"] == "Be brief."  # a single system prompt stays a plain string
    assert one["messages"] == [{"role": "user", "content": "hi"}]
    assert one["max_tokens"] == DEFAULT_MAX_TOKENS


def test_consecutive_same_role_messages_are_merged() -> None:
    out = to_anthropic_request(
        {
            "messages": [
                {"role": "user", "content": "one"},
                {"role": "user", "content": "two"},
                {"role": "assistant", "content": ""},
                {"role": "user", "content": "3"},
            ]
        },
        "m",
    )
    # The empty assistant turn carries nothing: dropping it lets the user turns merge.
    assert out["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "one"},
                {"type": "text", "text": "two"},
                {"type": "text", "text": "3"},
            ],
        }
    ]


def test_assistant_with_only_tool_calls_and_empty_arguments() -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "now", "arguments": ""}}
    out = to_anthropic_request(
        {
            "messages": [
                {"role": "user", "content": "time?"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
            ]
        },
        "m",
    )
    assert out["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "c1", "name": "now", "input": {}}],
    }


def test_cache_control_on_parts_is_kept() -> None:
    part = {"type": "text", "text": "long doc", "cache_control": {"type": "ephemeral"}}
    out = to_anthropic_request(
        {"messages": [{"role": "system", "content": [part]}, {"role": "user", "content": [part]}]},
        "m",
    )
    assert out["system"] == [part]
    assert out["messages"][0]["content"] == [part]


@pytest.mark.parametrize(
    ("choice", "parallel", "expected"),
    [
        ("auto", None, {"type": "auto"}),
        ("required", None, {"type": "any"}),
        ("none", None, {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            None,
            {"type": "tool", "name": "get_weather"},
        ),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            False,
            {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        ),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),  # "none" has no parallel setting in Anthropic
        (None, None, None),
    ],
)
def test_tool_choice(choice: Any, parallel: bool | None, expected: dict[str, Any] | None) -> None:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "x"}], "tools": [WEATHER_TOOL]}
    if choice is not None:
        body["tool_choice"] = choice
    if parallel is not None:
        body["parallel_tool_calls"] = parallel
    assert to_anthropic_request(body, "m").get("tool_choice") == expected


def test_tool_choice_without_tools_is_dropped() -> None:
    body = {"messages": [{"role": "user", "content": "x"}], "tool_choice": "required"}
    assert "tool_choice" not in to_anthropic_request(body, "m")


@pytest.mark.parametrize(
    ("extra", "key", "expected"),
    [
        ({"temperature": -1}, "temperature", 0.0),
        ({"temperature": 0.7}, "temperature", 0.7),
        ({"temperature": 1.5}, "temperature", None),  # clamped to 1, the default
        ({"temperature": 1}, "temperature", None),
        ({"top_p": 1}, "top_p", None),  # the default; newer models refuse it with temperature
        ({"max_tokens": 50, "max_completion_tokens": 70}, "max_tokens", 70),
        ({"stop": ["a", "b"]}, "stop_sequences", ["a", "b"]),
        ({"stop": []}, "stop_sequences", None),
        ({"metadata": {"user_id": "meta"}, "user": "field"}, "metadata", {"user_id": "meta"}),
        ({"metadata": {"task": "x"}}, "metadata", None),
        ({"stream": False}, "stream", None),
        ({"top_k": 5}, "top_k", 5),
    ],
)
def test_sampling_fields(extra: dict[str, Any], key: str, expected: Any) -> None:
    body = {"messages": [{"role": "user", "content": "x"}], **extra}
    assert to_anthropic_request(body, "m").get(key) == expected


def _call(arguments: str) -> dict[str, Any]:
    return {"id": "c", "type": "function", "function": {"name": "f", "arguments": arguments}}


@pytest.mark.parametrize(
    ("messages", "extra", "match"),
    [
        ([], {}, "messages"),
        ([{"role": "system", "content": "only"}], {}, "at least one"),
        ([{"role": "narrator", "content": "x"}], {}, "unsupported role"),
        ([{"role": "assistant", "tool_calls": [_call("{not json")]}], {}, "not valid JSON"),
        ([{"role": "assistant", "tool_calls": [_call("[1, 2]")]}], {}, "JSON object"),
        ([{"role": "tool", "content": "x"}], {}, "tool_call_id"),
        ([{"role": "user", "content": [{"type": "input_audio"}]}], {}, "input_audio"),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "data:image/png,abc"}}],
                }
            ],
            {},
            "base64",
        ),
        (
            [
                {
                    "role": "user",
                    "content": [{"type": "image_url", "image_url": {"url": "ftp://x/y.png"}}],
                }
            ],
            {},
            "URL",
        ),
        (
            [
                {"role": "system", "content": [{"type": "image_url", "image_url": "x"}]},
                {"role": "user", "content": "x"},
            ],
            {},
            "only text",
        ),
        ([{"role": "user", "content": "x"}], {"max_tokens": 0}, "max_tokens"),
        ([{"role": "user", "content": "x"}], {"tools": [{"type": "web_search"}]}, "function"),
        (
            [{"role": "user", "content": "x"}],
            {"tools": [WEATHER_TOOL], "tool_choice": "always"},
            "tool_choice",
        ),
        ([{"role": "user", "content": "x"}], {"stop": 3}, "stop"),
        ([{"role": "user", "content": "x"}], {"temperature": "hot"}, "temperature"),
    ],
)
def test_invalid_requests_raise_value_error(
    messages: list[Any], extra: dict[str, Any], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        to_anthropic_request({"messages": messages, **extra}, "m")


def test_translation_does_not_mutate_the_canonical_body() -> None:
    body = rich_body(parallel_tool_calls=False)
    before = copy.deepcopy(body)
    to_anthropic_request(body, "m")
    assert body == before


# -- Anthropic message -> canonical ------------------------------------------------------------


def anthropic_message(
    content: list[dict[str, Any]], stop_reason: str = "end_turn", **usage: int
) -> dict[str, Any]:
    return {
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 6, **usage},
    }


def test_text_message_becomes_a_chat_completion() -> None:
    msg = anthropic_message([{"type": "text", "text": "Bonjour"}, {"type": "text", "text": " !"}])
    completion = from_anthropic_message(msg, CREATED)
    body = completion.body
    ChatCompletion.model_validate(body)  # the openai SDK accepts the shape
    assert body["id"] == "msg_01XFDUDYJgAACzvnptvVoYEL"
    assert (body["object"], body["created"]) == ("chat.completion", CREATED)
    assert body["choices"][0] == {
        "index": 0,
        "message": {"role": "assistant", "content": "Bonjour !", "refusal": None},
        "finish_reason": "stop",
        "logprobs": None,
    }
    assert completion.content == "Bonjour !"
    assert completion.model_reported == "claude-sonnet-4-5-20250929"
    assert completion.finish_reason == "stop"
    assert completion.usage == Usage(input_tokens=12, output_tokens=6)
    assert not completion.is_empty


def test_tool_use_message_becomes_tool_calls() -> None:
    msg = anthropic_message(
        [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "get_weather",
                "input": {"city": "Paris", "unit": "C"},
            },
            {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
        ],
        stop_reason="tool_use",
    )
    completion = from_anthropic_message(msg, CREATED)
    ChatCompletion.model_validate(completion.body)
    message = completion.body["choices"][0]["message"]
    assert message["content"] is None  # only tool calls: no text
    assert [c["id"] for c in message["tool_calls"]] == ["toolu_1", "toolu_2"]
    first = message["tool_calls"][0]
    assert first["type"] == "function"
    assert first["function"]["name"] == "get_weather"
    assert orjson.loads(first["function"]["arguments"]) == {"city": "Paris", "unit": "C"}
    assert message["tool_calls"][1]["function"]["arguments"] == "{}"
    assert completion.tool_calls == 2
    assert completion.finish_reason == "tool_calls"
    assert not completion.is_empty


def test_text_beside_tool_use_is_kept() -> None:
    msg = anthropic_message(
        [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}},
        ],
        stop_reason="tool_use",
    )
    completion = from_anthropic_message(msg, CREATED)
    assert completion.content == "Checking."
    assert completion.tool_calls == 1


def test_usage_counts_cache_reads_and_writes_as_input() -> None:
    msg = anthropic_message(
        [{"type": "text", "text": "ok"}],
        cache_read_input_tokens=300,
        cache_creation_input_tokens=50,
    )
    completion = from_anthropic_message(msg, CREATED)
    assert completion.usage == Usage(
        input_tokens=362, output_tokens=6, cached_input_tokens=300, cache_write_tokens=50
    )
    usage = completion.body["usage"]
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (
        362,
        6,
        368,
    )
    assert usage["prompt_tokens_details"]["cached_tokens"] == 300


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("model_context_window_exceeded", "length"),
        ("some_future_reason", "stop"),
    ],
)
def test_every_stop_reason(stop_reason: str, finish: str) -> None:
    msg = anthropic_message([{"type": "text", "text": "x"}], stop_reason=stop_reason)
    assert from_anthropic_message(msg, CREATED).finish_reason == finish


def test_empty_message_is_empty_not_none() -> None:
    completion = from_anthropic_message(anthropic_message([]), CREATED)
    assert completion.body["choices"][0]["message"]["content"] == ""
    assert completion.is_empty


def test_message_without_content_list_is_rejected() -> None:
    with pytest.raises(ValueError, match="content"):
        from_anthropic_message({"type": "message", "content": "text"}, CREATED)


# -- streams ------------------------------------------------------------------------------------

# A recorded-shape stream as the real API sends it: text, then a tool_use whose input arrives
# in fragments (the first one empty), pings, and cumulative usage in message_delta.
RECORDED_STREAM: list[tuple[str, dict[str, Any]]] = [
    (
        "message_start",
        {
            "type": "message_start",
            "message": {
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
        },
    ),
    (
        "content_block_start",
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    ),
    ("ping", {"type": "ping"}),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": "Okay, let's check"},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 0,
            "delta": {"type": "text_delta", "text": " the weather."},
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 0}),
    (
        "content_block_start",
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
                "name": "get_weather",
                "input": {},
            },
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ""},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"location": "San Fra'},
        },
    ),
    (
        "content_block_delta",
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {
                "type": "input_json_delta",
                "partial_json": 'ncisco, CA", "unit": "fahrenheit"}',
            },
        },
    ),
    ("content_block_stop", {"type": "content_block_stop", "index": 1}),
    (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": None},
            "usage": {"output_tokens": 89},
        },
    ),
    ("message_stop", {"type": "message_stop"}),
]


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
            (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": block,
                    "content_block": {
                        "type": "tool_use",
                        "id": f"t{block}",
                        "name": "f",
                        "input": {},
                    },
                },
            ),
            (
                "content_block_delta",
                {
                    "type": "content_block_delta",
                    "index": block,
                    "delta": {"type": "input_json_delta", "partial_json": f'{{"n": {block}}}'},
                },
            ),
            ("content_block_stop", {"type": "content_block_stop", "index": block}),
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
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "end_turn"},
                "usage": {
                    "output_tokens": 10,
                    "input_tokens": 500,
                    "cache_creation_input_tokens": 40,
                    "cache_read_input_tokens": None,
                },
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    translator, chunks = translate(events)
    # input_tokens replaced (500), cache reads kept from message_start (None is "not given").
    assert chunks[-1].usage == Usage(
        input_tokens=1564, output_tokens=10, cached_input_tokens=1024, cache_write_tokens=40
    )
    assert translator.usage == chunks[-1].usage
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]


def test_thinking_and_unknown_events_are_ignored() -> None:
    events = [
        RECORDED_STREAM[0],
        (
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 0,
                "content_block": {"type": "thinking", "thinking": ""},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "secret"},
            },
        ),
        (
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 0,
                "delta": {"type": "signature_delta", "signature": "s"},
            },
        ),
        ("some_new_event", {"type": "some_new_event"}),
    ]
    translator, chunks = translate(events)
    assert len(chunks) == 1  # just the role chunk
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
