"""The Anthropic front door's request translation: a client's Messages request in, the
canonical (OpenAI Chat Completions) body out, and back again without loss."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.providers.anthropic_wire import to_anthropic_request
from modelroute.providers.openai_body import openai_body
from modelroute.server.anthropic_front import messages_to_openai

from ..providers.anthropic_wire_support import ANTHROPIC_WEATHER_TOOL as WEATHER

PNG = "iVBORw0KGgo="


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
    thinking = {"type": "enabled", "budget_tokens": 1024}
    request = rich_request(top_k=20, thinking=thinking, container="c_1", max_tokens=2048)
    body = messages_to_openai(request)
    assert body == {
        "model": "support-triage",
        "max_tokens": 2048,
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
        # No Chat Completions field for these: kept as sent, for the providers to decide.
        "anthropic": {"top_k": 20, "thinking": thinking, "container": "c_1"},
    }


def test_messages_fields_without_a_canonical_one_go_out_unchanged_to_anthropic() -> None:
    request = rich_request(
        top_k=20,
        thinking={"type": "enabled", "budget_tokens": 1024, "display": "omitted"},
        service_tier="standard_only",
        container="c_1",
        max_tokens=2048,
    )
    assert to_anthropic_request(messages_to_openai(request), "support-triage") == request


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


def test_thinking_blocks_from_earlier_turns_go_back_to_anthropic_only() -> None:
    thinking = [
        {"type": "thinking", "thinking": "hmm", "signature": "s"},
        {"type": "redacted_thinking", "data": "xx"},
    ]
    request = {
        "model": "m",
        "max_tokens": 5,
        "messages": [
            {"role": "user", "content": "hi"},
            {"role": "assistant", "content": [*thinking, {"type": "text", "text": "Hello"}]},
            {"role": "user", "content": "again"},
        ],
    }
    body = messages_to_openai(request)
    assert body["messages"][1] == {
        "role": "assistant",
        "content": "Hello",
        "thinking_blocks": thinking,
    }
    assert to_anthropic_request(body, "m") == request  # signed blocks back, first, unchanged
    assert openai_body(body, "gpt")["messages"][1] == {"role": "assistant", "content": "Hello"}


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"top_k": -1}, "top_k"),
        ({"top_k": True}, "top_k"),
        ({"service_tier": "priority"}, "service_tier"),
        ({"thinking": {"type": "enabled", "budget_tokens": 1023}}, "at least 1024"),
        ({"thinking": {"type": "enabled", "budget_tokens": 5}}, "at least 1024"),
        ({"thinking": {"type": "enabled", "budget_tokens": 4096}}, "less than max_tokens"),
        ({"thinking": {"budget_tokens": 2048}}, "thinking: must be an object with a 'type'"),
    ],
)
def test_messages_fields_are_checked_as_the_api_checks_them(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        messages_to_openai({**rich_request(), "max_tokens": 4096, **fields})


@pytest.mark.parametrize(
    ("fields", "sent"),
    [
        ({"thinking": {"type": "enabled", "budget_tokens": 1024}}, {"reasoning_effort": "low"}),
        ({"thinking": {"type": "enabled", "budget_tokens": 4096}}, {"reasoning_effort": "medium"}),
        ({"thinking": {"type": "enabled", "budget_tokens": 16384}}, {"reasoning_effort": "high"}),
        ({"thinking": {"type": "disabled"}}, {}),
        ({"service_tier": "auto"}, {"service_tier": "auto"}),
        ({"service_tier": "standard_only"}, {"service_tier": "default"}),
    ],
)
def test_openai_format_models_get_the_equivalents(fields: dict[str, Any], sent: Any) -> None:
    request = {"model": "m", "max_tokens": 20000, "messages": [{"role": "user", "content": "hi"}]}
    body = openai_body(messages_to_openai({**request, **fields}), "gpt")
    assert body == {**messages_to_openai(request), **sent}


@pytest.mark.parametrize(
    "fields", [{"top_k": 3}, {"thinking": {"type": "adaptive"}}, {"container": "c_1"}]
)
def test_openai_format_models_refuse_what_has_no_equivalent(fields: dict[str, Any]) -> None:
    request = {"model": "m", "max_tokens": 20000, "messages": [{"role": "user", "content": "hi"}]}
    with pytest.raises(ValueError, match=f"^{next(iter(fields))}: .* model 'gpt'"):
        openai_body(messages_to_openai({**request, **fields}), "gpt")


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
