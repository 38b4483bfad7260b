"""OpenAI's Responses API upstream (``POST {base_url}/responses``), for a Responses request
routed to a model with the ``responses`` capability: the client's request goes as it was
sent (``model`` replaced), and the answer comes back whole.

Routing and accounting read answers in Chat Completions terms, so each answer also gets
its Chat Completions reading: a ``response`` object becomes a ``Completion`` whose
``response`` is the object itself, and each stream event a ``StreamChunk`` whose ``event``
and ``raw`` are the event as sent. A stream ends at ``response.completed`` or
``response.incomplete``; ``response.failed``, an ``error`` event, or a stream cut before
its end is an ``UpstreamError``, like any other failure.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from typing import Any

import orjson

from modelroute.policy.compiled import Model
from modelroute.providers.answers import answer_json, event_json, malformed, post_for_body
from modelroute.providers.http import Transport, read_error, sse_events
from modelroute.types import Completion, StreamChunk, UpstreamError, Usage

_ENDS = frozenset({"response.completed", "response.incomplete"})
_FAILS = frozenset({"response.failed", "error"})
_INCOMPLETE = {"max_output_tokens": "length", "content_filter": "content_filter"}
# Output items that are neither the answer's text nor reasoning: a call the model made.
_NOT_CALLS = frozenset({"message", "reasoning"})


def usage_of(raw: object) -> Usage | None:
    """A Responses API ``usage`` object, normalised."""
    if not isinstance(raw, dict):
        return None
    details = raw.get("input_tokens_details") or {}
    output = raw.get("output_tokens_details") or {}
    return Usage(
        input_tokens=_count(raw.get("input_tokens")),
        output_tokens=_count(raw.get("output_tokens")),
        cached_input_tokens=_count(details.get("cached_tokens")),
        reasoning_tokens=_count(output.get("reasoning_tokens")),
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def finish_reason(response: dict[str, Any], calls: bool) -> str:
    """A response's status as a Chat Completions ``finish_reason``."""
    if response.get("status") == "incomplete":
        reason = (response.get("incomplete_details") or {}).get("reason")
        return _INCOMPLETE.get(str(reason), "length")
    return "tool_calls" if calls else "stop"


def response_completion(response: dict[str, Any]) -> Completion:
    """A ``response`` object and its Chat Completions reading."""
    texts: list[str] = []
    functions: list[dict[str, Any]] = []
    calls = 0
    for item in response.get("output") or ():
        kind = item.get("type") if isinstance(item, dict) else None
        if kind == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and part.get("type") == "output_text":
                    texts.append(str(part.get("text") or ""))
                elif isinstance(part, dict) and part.get("type") == "refusal":
                    texts.append(str(part.get("refusal") or ""))
        elif kind == "function_call":
            function = {"name": item.get("name"), "arguments": item.get("arguments")}
            functions.append({"id": item.get("call_id"), "type": "function", "function": function})
        if kind is not None and kind not in _NOT_CALLS:
            calls += 1
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if functions:
        message["tool_calls"] = functions
    usage = usage_of(response.get("usage"))
    body = {
        "id": response.get("id"),
        "object": "chat.completion",
        "created": response.get("created_at"),
        "model": response.get("model"),
        "choices": [
            {"index": 0, "message": message, "finish_reason": finish_reason(response, calls > 0)}
        ],
    }
    if usage is not None:
        body["usage"] = usage.to_openai()
    completion = Completion.from_openai(body)
    completion.tool_calls = calls
    completion.response = response
    return completion


async def complete(
    transport: Transport, headers: dict[str, str], model: Model, request: dict[str, Any]
) -> Completion:
    payload = orjson.dumps({**request, "model": model.model_id, "stream": False})
    raw = await post_for_body(transport, f"{model.base_url}/responses", headers, payload)
    data = answer_json(raw)
    if not isinstance(data, dict) or not isinstance(data.get("output"), list):
        raise malformed(raw, "response has no 'output'")
    if data.get("status") == "failed":
        error = data.get("error") if isinstance(data.get("error"), dict) else {}
        raise UpstreamError(
            status=500, body=orjson.dumps({"error": error}), detail="the response failed"
        )
    return response_completion(data)


async def stream(
    transport: Transport, headers: dict[str, str], model: Model, request: dict[str, Any]
) -> AsyncGenerator[StreamChunk, None]:
    payload = orjson.dumps({**request, "model": model.model_id, "stream": True})
    headers = {**headers, "accept": "text/event-stream"}
    reader = EventReader()
    async with transport.post(f"{model.base_url}/responses", headers, payload) as response:
        if response.status != 200:
            raise await read_error(response)
        async with contextlib.aclosing(sse_events(response)) as reads:
            async for events in reads:
                last = len(events) - 1
                for index, (_name, data) in enumerate(events):
                    chunk = reader.read(data)
                    chunk.more = index < last
                    yield chunk
                    if reader.ended:
                        return
    raise UpstreamError(
        note="stream_cut", cause="EndOfStream", detail="stream ended before response.completed"
    )


class EventReader:
    """Responses API stream events in, ``StreamChunk`` (with their Chat Completions
    reading) out."""

    __slots__ = ("_calls", "ended", "id", "model")

    def __init__(self) -> None:
        self.model: str | None = None
        self.id: str | None = None
        self._calls: dict[str, int] = {}  # function_call item id -> tool_calls index
        self.ended = False

    def read(self, data: bytes) -> StreamChunk:
        event = event_json(data)
        kind = event.get("type") if isinstance(event, dict) else None
        if not isinstance(kind, str):
            raise UpstreamError(note="invalid_json", body=data[:1000], detail="event has no type")
        if kind in _FAILS:
            raise UpstreamError(
                note="stream_error_event", body=data[:4000], detail=f"{kind} event in stream"
            )
        chunk = StreamChunk(data={}, raw=data, event=kind)
        delta: dict[str, Any] = {}
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event, chunk, delta)
        chunk.data = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": chunk.finish_reason}],
        }
        return chunk

    def _started(self, event: dict[str, Any], chunk: StreamChunk, delta: dict[str, Any]) -> None:
        response = event.get("response") or {}
        self.id, self.model = response.get("id"), response.get("model")

    def _text(self, event: dict[str, Any], chunk: StreamChunk, delta: dict[str, Any]) -> None:
        text = event.get("delta")
        if isinstance(text, str) and text:
            chunk.content = delta["content"] = text

    def _item(self, event: dict[str, Any], chunk: StreamChunk, delta: dict[str, Any]) -> None:
        item = event.get("item") or {}
        kind = item.get("type")
        if kind in _NOT_CALLS or not isinstance(kind, str):
            return
        chunk.tool_call = True  # the model is acting: output has begun
        if kind == "function_call":
            index = self._calls[str(item.get("id"))] = len(self._calls)
            function = {"name": item.get("name"), "arguments": ""}
            call = {"index": index, "id": item.get("call_id"), "type": "function"}
            delta["tool_calls"] = [{**call, "function": function}]

    def _arguments(self, event: dict[str, Any], chunk: StreamChunk, delta: dict[str, Any]) -> None:
        index = self._calls.get(str(event.get("item_id")), 0)
        piece = event.get("delta")
        if isinstance(piece, str) and piece:
            chunk.tool_call = True
            delta["tool_calls"] = [{"index": index, "function": {"arguments": piece}}]

    def _ended(self, event: dict[str, Any], chunk: StreamChunk, delta: dict[str, Any]) -> None:
        response = event.get("response") or {}
        self.ended = True
        chunk.usage = usage_of(response.get("usage"))
        chunk.finish_reason = finish_reason(response, bool(self._calls))


_Handler = Callable[[EventReader, dict[str, Any], StreamChunk, dict[str, Any]], None]
_HANDLERS: dict[str, _Handler] = {
    "response.created": EventReader._started,
    "response.output_text.delta": EventReader._text,
    "response.refusal.delta": EventReader._text,
    "response.output_item.added": EventReader._item,
    "response.function_call_arguments.delta": EventReader._arguments,
    "response.completed": EventReader._ended,
    "response.incomplete": EventReader._ended,
}
