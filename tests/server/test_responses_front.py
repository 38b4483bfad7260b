"""The Responses door's translation (pure): what has a Chat Completions form is translated,
what has none is listed as needing the Responses API, what is malformed is refused with its
``param``; and a bridged answer's response object and events keep the SDK's shapes."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.request_fields import RESPONSES_NATIVE_ONLY, RESPONSES_REQUEST
from modelroute.server.responses_front import BridgeError, responses_to_chat
from modelroute.server.responses_reply import StreamToResponses, completion_to_response
from modelroute.types import Completion, StreamChunk, Usage

from ..responses_shapes import squeezed, sse_events, valid_response


def test_a_conversation_becomes_messages() -> None:
    body = responses_to_chat(
        {
            "model": "chat",
            "instructions": "Be brief.",
            "input": [
                {"role": "developer", "content": "Use metric units."},
                {"type": "message", "role": "user", "content": [
                    {"type": "input_text", "text": "Weather? "},
                    {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
                ]},
                {"role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
                {"type": "function_call", "call_id": "c1", "name": "w", "arguments": "{}"},
                {"type": "function_call", "call_id": "c2", "name": "w", "arguments": "{}"},
                {"type": "function_call_output", "call_id": "c1", "output": "22"},
                {"type": "function_call_output", "call_id": "c2", "output": "23"},
            ],
            "tools": [{"type": "function", "name": "w", "parameters": {"type": "object"}}],
            "tool_choice": {"type": "function", "name": "w"},
            "reasoning": {"effort": "low"},
            "text": {"format": {"type": "json_object"}, "verbosity": "low"},
            "max_output_tokens": 100.0,
            "top_logprobs": 2,
        }
    )  # fmt: skip
    roles = [(m["role"], len(m.get("tool_calls") or ())) for m in body["messages"]]
    assert roles == [
        ("system", 0), ("system", 0), ("user", 0), ("assistant", 2), ("tool", 0), ("tool", 0),
    ]  # fmt: skip
    assert body["messages"][2]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "https://x/y.png", "detail": "low"},
    }
    assert body["messages"][3]["content"] == "Checking."
    assert body["tools"] == [
        {"type": "function", "function": {"name": "w", "parameters": {"type": "object"}}}
    ]
    assert body["tool_choice"] == {"type": "function", "function": {"name": "w"}}
    assert (body["reasoning_effort"], body["verbosity"]) == ("low", "low")
    assert body["response_format"] == {"type": "json_object"}
    assert (
        body["max_completion_tokens"] == 100 and body[RESPONSES_REQUEST]["max_output_tokens"] == 100
    )
    assert (body["logprobs"], body["top_logprobs"]) == (True, 2)
    assert RESPONSES_NATIVE_ONLY not in body


def test_what_has_no_chat_form_is_listed_not_dropped() -> None:
    body = responses_to_chat(
        {
            "model": "chat",
            "input": [
                {"role": "user", "content": [{"type": "input_file", "file_id": "f1"}]},
                {"type": "reasoning", "id": "rs_1", "summary": []},
            ],
            "tools": [{"type": "web_search"}, {"type": "function", "name": "f"}],
            "previous_response_id": "resp_1",
            "background": True,
            "reasoning": {"summary": "auto"},
            "include": ["reasoning.encrypted_content"],
            "brand_new_parameter": 1,
        }
    )
    where = [reason.split(":", 1)[0] for reason in body[RESPONSES_NATIVE_ONLY]]
    assert where == [
        "input[0].content[0]", "input[1]", "tools[0]", "reasoning.summary", "include[0]",
        "previous_response_id", "background", "brand_new_parameter",
    ]  # fmt: skip
    assert [t["function"]["name"] for t in body["tools"]] == ["f"]
    assert body[RESPONSES_REQUEST]["tools"][0] == {"type": "web_search"}  # for a native model


@pytest.mark.parametrize(
    ("request_body", "param"),
    [
        ({"input": "x"}, "model"),
        ({"model": "m"}, "input"),
        ({"model": "m", "input": []}, "input"),
        ({"model": "m", "input": ["x"]}, "input[0]"),
        ({"model": "m", "input": [{"role": "user", "content": 1}]}, "input[0].content"),
        ({"model": "m", "input": [{"type": "function_call", "name": "f"}]}, "input[0].call_id"),
        ({"model": "m", "input": "x", "tools": [{"type": "function"}]}, "tools[0].name"),
        ({"model": "m", "input": "x", "temperature": "hot"}, "temperature"),
        ({"model": "m", "input": "x", "max_output_tokens": 0}, "max_output_tokens"),
        ({"model": "m", "input": "x", "tool_choice": 3}, "tool_choice"),
    ],
)
def test_malformed_requests_name_their_param(request_body: dict[str, Any], param: str) -> None:
    with pytest.raises(BridgeError) as caught:
        responses_to_chat(request_body)
    assert caught.value.param == param


def test_a_bridged_answer_is_a_valid_response() -> None:
    completion = Completion.from_openai(
        {
            "id": "chatcmpl-1",
            "model": "m-1",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "length",
                    "message": {
                        "role": "assistant",
                        "content": "Hi",
                        "tool_calls": [
                            {
                                "id": "c1",
                                "type": "function",
                                "function": {"name": "f", "arguments": "{}"},
                            }
                        ],
                    },
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 7},
        }
    )
    request = {"model": "chat", "input": "x", "instructions": "Be brief.", "max_output_tokens": 7}
    data = completion_to_response(completion, request, "resp_abc", "m-1", 1)
    response = valid_response(data)
    assert response.status == "incomplete" and response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert [item.type for item in response.output] == ["message", "function_call"]
    assert response.output_text == "Hi" and response.instructions == "Be brief."
    assert response.usage is not None and response.usage.total_tokens == 12


def chunk(
    delta: dict[str, Any], finish: str | None = None, usage: Usage | None = None
) -> StreamChunk:
    data = {"model": "m-1", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    made = StreamChunk.from_openai(data)
    made.usage = usage
    return made


def test_text_then_calls_stream_in_order_and_valid() -> None:
    translator = StreamToResponses({"model": "chat", "input": "x"}, "resp_abc", "m", 1)
    call = {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
    out = translator.feed(chunk({"role": "assistant", "content": "Let me"}))
    out += translator.feed(chunk({"content": " check."}))
    out += translator.feed(chunk({"tool_calls": [call]}))
    out += translator.feed(chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}))
    out += translator.feed(chunk({}, "tool_calls", Usage(3, 4)))
    out += translator.finish()
    events = sse_events(out.decode())  # numbered from 0, each valid for the SDK
    assert squeezed([e["type"] for e in events]) == [
        "response.created", "response.in_progress",
        "response.output_item.added", "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.done", "response.content_part.done", "response.output_item.done",
        "response.output_item.added", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done",
        "response.completed",
    ]  # fmt: skip
    final = valid_response(events[-1]["response"])
    assert final.output_text == "Let me check." and final.output[1].type == "function_call"
    assert [e["output_index"] for e in events if e["type"] == "response.output_item.done"] == [0, 1]
