"""What every fuzzed answer must be: never a 5xx, every error in the endpoint's own format
(OpenAI's or Anthropic's), every success a valid completion, message, Responses object or
stream, and all of it conforming to the document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from schemathesis import Case, Response
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from ..responses_shapes import valid_event, valid_response
from .fuzz_document import CHAT, COUNT, MESSAGES, MODEL, MODELS, RESPONSES_DOOR, STORED

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
OPENAI_ERROR_TYPES = {"invalid_request_error", "upstream_error", "service_unavailable", "timeout"}
ANTHROPIC_ERROR_TYPES = {
    "invalid_request_error",
    "not_found_error",
    "request_too_large",
    "api_error",
    "overloaded_error",
}


def _json(response: Response) -> Any:
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("application/json"), f"content-type {content_type!r}"
    return orjson.loads(response.content)


def _openai_error(response: Response) -> None:
    body = _json(response)
    error = body.get("error") if isinstance(body, dict) else None
    assert isinstance(error, dict), f"not an OpenAI error object: {body!r}"
    assert isinstance(error.get("message"), str) and error["message"], body
    assert error.get("type") in OPENAI_ERROR_TYPES, body
    assert "param" in error and (error["param"] is None or isinstance(error["param"], str))
    assert "code" in error and (error["code"] is None or isinstance(error["code"], str))


def _anthropic_error(response: Response) -> None:
    body = _json(response)
    assert isinstance(body, dict) and body.get("type") == "error", body
    error = body.get("error")
    assert isinstance(error, dict), f"not an Anthropic error object: {body!r}"
    assert error.get("type") in ANTHROPIC_ERROR_TYPES, body
    assert isinstance(error.get("message"), str) and error["message"], body


def _chat_completion(body: Any) -> None:
    assert isinstance(body, dict) and body.get("object") == "chat.completion", body
    assert isinstance(body.get("id"), str) and isinstance(body.get("model"), str), body
    assert isinstance(body.get("created"), int), body
    choices = body.get("choices")
    assert isinstance(choices, list) and choices, body
    message = choices[0].get("message")
    assert isinstance(message, dict) and message.get("role") == "assistant", body
    content, calls = message.get("content"), message.get("tool_calls")
    assert (isinstance(content, str) and content) or calls, f"an empty completion: {body!r}"
    usage = body.get("usage")
    assert isinstance(usage, dict), body
    for key in ("prompt_tokens", "completion_tokens", "total_tokens"):
        assert isinstance(usage.get(key), int) and usage[key] >= 0, body


def _anthropic_message(body: Any) -> None:
    assert isinstance(body, dict) and body.get("type") == "message", body
    assert body.get("role") == "assistant" and isinstance(body.get("id"), str), body
    content = body.get("content")
    assert isinstance(content, list) and content, f"an empty message: {body!r}"
    kinds = ("text", "tool_use", "thinking", "redacted_thinking")
    assert all(isinstance(b, dict) and b.get("type") in kinds for b in content)
    assert isinstance(body.get("stop_reason"), str), body


def _events(response: Response) -> list[tuple[str | None, bytes]]:
    content_type = response.headers.get("content-type", [""])[0]
    assert content_type.startswith("text/event-stream"), f"content-type {content_type!r}"
    assert not response.stream_cut_short, "the stream did not end in time (a hang?)"
    events = []
    for block in response.content.split(b"\n\n"):
        if not block.strip():
            continue
        name, data = None, b""
        for line in block.split(b"\n"):
            if line.startswith(b"event: "):
                name = line[7:].decode()
            elif line.startswith(b"data: "):
                data = line[6:]
        events.append((name, data))
    return events


def _openai_stream(response: Response) -> None:
    events = _events(response)
    assert events and events[-1][1] == b"[DONE]", f"no [DONE]: {response.content[-300:]!r}"
    for _, data in events[:-1]:
        chunk = orjson.loads(data)
        assert "error" not in chunk, f"a healthy upstream failed a stream: {chunk!r}"
        assert chunk.get("object") == "chat.completion.chunk", chunk


def _anthropic_stream(response: Response) -> None:
    events = _events(response)
    names = [name for name, _ in events]
    assert names[:1] == ["message_start"] and names[-1:] == ["message_stop"], names
    assert "error" not in names, response.content[-300:]
    for name, data in events:
        assert orjson.loads(data).get("type") == name, (name, data)


def _responses_stream(response: Response) -> None:
    """The Responses API's events, each valid for the SDK's model of its type, numbered in
    order, ending in ``response.completed`` (or ``response.incomplete``): never a failure."""
    events = _events(response)
    names = [name for name, _ in events]
    assert names[:2] == ["response.created", "response.in_progress"], names
    assert names[-1] in ("response.completed", "response.incomplete"), names
    assert "error" not in names and "response.failed" not in names, response.content[-300:]
    for number, (name, data) in enumerate(events):
        event = orjson.loads(data)
        assert event.get("type") == name and event.get("sequence_number") == number, event
        valid_event(event)


def _responses_object(body: Any) -> None:
    response = valid_response(body)
    assert response.status in ("completed", "incomplete"), body
    assert response.output, f"an empty response: {body!r}"
    assert response.usage is not None and response.usage.output_tokens >= 0, body


def _anthropic_caller(label: str, case: Case[Any]) -> bool:
    """Whether errors (and model lists) answer in Anthropic's format."""
    headers = {name.lower() for name in case.headers or {}}
    return label in (MESSAGES, COUNT) or bool(headers & {"anthropic-version", "x-api-key"})


# Each routed operation's checks: of an error, a stream, a body.
_ANSWERS: dict[
    str, tuple[Callable[[Response], None], Callable[[Response], None], Callable[[Any], None]]
] = {
    CHAT: (_openai_error, _openai_stream, _chat_completion),
    MESSAGES: (_anthropic_error, _anthropic_stream, _anthropic_message),
    RESPONSES_DOOR: (_openai_error, _responses_stream, _responses_object),
}


def check(label: str, case: Case[Any], response: Response) -> None:
    status = response.status_code
    assert status < 500, f"{status} with a healthy upstream: {response.content[:500]!r}"
    caller_error = _anthropic_error if _anthropic_caller(label, case) else _openai_error
    if case.method.upper() != label.split(" ")[0]:
        # An undeclared method: 405 with Allow, in the caller's error format.
        assert status == 405, status
        assert response.headers.get("allow"), response.headers
        caller_error(response)
        return
    if label in (COUNT, MODELS, MODEL, *STORED) and status >= 400:
        assert status in (400, 404, 413), status
        caller_error(response)
    elif label == COUNT:
        assert isinstance(_json(response).get("input_tokens"), int), response.content
    streamed = isinstance(case.body, dict) and bool(case.body.get("stream"))
    if label in _ANSWERS:
        error, stream, body = _ANSWERS[label]
        if status >= 400:
            error(response)
        elif streamed:
            stream(response)
        else:
            body(_json(response))
    elif label not in (COUNT, MODELS, MODEL, *STORED):
        assert status == 200, response.content[:500]
    case.validate_response(response, checks=CHECKS)
