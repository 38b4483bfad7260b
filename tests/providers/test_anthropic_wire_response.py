"""Anthropic Messages answers → OpenAI Chat Completions, checked against the official
``openai`` SDK's own models (``openai.types.chat``)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from openai.types.chat import ChatCompletion

from modelroute.providers.anthropic_wire import from_anthropic_message
from modelroute.types import Usage

from .anthropic_wire_support import CREATED


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
