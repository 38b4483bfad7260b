"""The Anthropic front door's complete answers: a canonical completion in, a Messages answer
out that the official ``anthropic`` SDK accepts as a ``Message``."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message

from modelroute.server.anthropic_front import completion_to_message, error_body
from modelroute.types import Completion, Usage


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


@pytest.mark.parametrize(
    ("finish", "named", "expected"),
    [
        ("stop", "END", ("stop_sequence", "END")),  # named as vLLM and our Anthropic path do
        ("stop", None, ("end_turn", None)),  # OpenAI: a match, or the end? Not guessed.
        ("stop", 128001, ("end_turn", None)),  # vLLM's stop token id: the model's own end
        ("length", "END", ("max_tokens", None)),
    ],
)
def test_a_stop_sequence_is_reported_when_the_upstream_names_it(
    finish: str, named: object, expected: tuple[str, str | None]
) -> None:
    result = completion({"content": "x"}, finish=finish)
    result.body["choices"][0]["stop_reason"] = named
    message = completion_to_message(result, "m")
    assert (message["stop_reason"], message["stop_sequence"]) == expected


def test_thinking_blocks_lead_the_message() -> None:
    thinking = [
        {"type": "thinking", "thinking": "Let me see.", "signature": "sig"},
        {"type": "redacted_thinking", "data": "opaque"},
    ]
    message = completion_to_message(
        completion({"content": "Paris", "thinking_blocks": thinking}), "m"
    )
    Message.model_validate(message)
    assert message["content"] == [*thinking, {"type": "text", "text": "Paris"}]
