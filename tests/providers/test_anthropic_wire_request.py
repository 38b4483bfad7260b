"""Canonical (OpenAI Chat Completions) requests → Anthropic Messages requests.

The official ``anthropic`` SDK's request types check the fields we produce, and the front
door's reverse translation checks that a round trip keeps the conversation.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest
from anthropic.types import message_create_params

from modelroute.providers.anthropic_wire import DEFAULT_MAX_TOKENS, to_anthropic_request
from modelroute.server.anthropic_front import messages_to_openai

from .anthropic_wire_support import ANTHROPIC_WEATHER_TOOL, WEATHER_TOOL

PNG = (
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5Er"
    "kJggg=="
)


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
    "tools": [ANTHROPIC_WEATHER_TOOL],  # WEATHER_TOOL in Anthropic's form
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
