"""Answers for the Anthropic-compatible front door: an OpenAI-shaped ``Completion`` as a
Message, OpenAI stream chunks as Anthropic's stream events, errors in Anthropic's format. Pure."""

from __future__ import annotations

from typing import Any

import orjson

from modelroute.types import Completion, StreamChunk, Usage

_STOP_REASON = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def error_body(error_type: str, message: str) -> dict[str, Any]:
    """Anthropic's error JSON."""
    return {"type": "error", "error": {"type": error_type, "message": message}}


def message_id(openai_id: object) -> str:
    """A ``msg_`` id derived from an OpenAI completion id (kept if it already is one)."""
    raw = str(openai_id or "")
    if raw.startswith("msg_"):
        return raw
    return "msg_" + (raw.removeprefix("chatcmpl-") or "unknown")


def stop_reason(finish_reason: str | None, has_tool_calls: bool) -> str:
    # Some OpenAI-compatible servers say "stop" after a tool call; Anthropic clients loop on
    # tool_use, so the calls decide unless the answer was cut short.
    if has_tool_calls and finish_reason != "length":
        return "tool_use"
    return _STOP_REASON.get(finish_reason or "stop", "end_turn")


def usage_to_anthropic(usage: Usage | None) -> dict[str, int]:
    """Anthropic counts uncached input apart from cache reads and writes."""
    usage = usage or Usage()
    cached, written = usage.cached_input_tokens, usage.cache_write_tokens
    return {
        "input_tokens": max(0, usage.input_tokens - cached - written),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": cached,
    }


def completion_to_message(completion: Completion, model: str) -> dict[str, Any]:
    """An OpenAI-shaped ``Completion`` as an Anthropic Message."""
    choices = completion.body.get("choices") or []
    first = choices[0] if choices and isinstance(choices[0], dict) else {}
    calls = (first.get("message") or {}).get("tool_calls") or []
    content: list[dict[str, Any]] = []
    if completion.content:
        content.append({"type": "text", "text": completion.content})
    for call in calls:
        if isinstance(call, dict):
            content.append(_tool_use_block(call))
    return {
        "id": message_id(completion.body.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(completion.finish_reason, bool(calls)),
        "stop_sequence": None,
        "usage": usage_to_anthropic(completion.usage),
    }


def _tool_use_block(call: dict[str, Any]) -> dict[str, Any]:
    function = call.get("function") or {}
    return {
        "type": "tool_use",
        "id": str(call.get("id") or ""),
        "name": str(function.get("name") or ""),
        "input": _parse_arguments(function.get("arguments")),
    }


def _parse_arguments(raw: object) -> dict[str, Any]:
    """Tool arguments as an object; a model's malformed JSON becomes {} (input must be one)."""
    if isinstance(raw, dict):
        return raw
    try:
        parsed = orjson.loads(raw) if isinstance(raw, str | bytes) and raw else {}
    except orjson.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def sse(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class StreamToAnthropic:
    """OpenAI ``chat.completion.chunk`` events in, Anthropic stream events (SSE bytes) out.

    The sequence is Anthropic's: message_start, ping, then for each content block
    content_block_start, content_block_delta..., content_block_stop, and at ``finish()``
    message_delta (stop reason and usage) and message_stop. message_start carries the
    prompt's tokens as the upstream counted them when its first chunk says (an Anthropic
    upstream does), else ``input_tokens``, an estimate; message_delta has the totals, which
    Anthropic's SDK applies as cumulative values. ``model`` names the model when the first
    chunk does not.
    """

    def __init__(self, model: str, message_id: str, input_tokens: int = 0) -> None:
        self.model = model
        self.message_id = message_id
        self.input_tokens = input_tokens
        self.usage: Usage | None = None
        self._started = False
        self._ended = False
        self._open: int | None = None  # index of the open content block
        self._open_text = False  # whether the open block is a text block
        self._next = 0
        self._tools: dict[int, int] = {}  # OpenAI tool_calls index -> content block index
        self._finish: str | None = None

    def feed(self, chunk: StreamChunk) -> bytes:
        if self._ended:
            return b""
        if chunk.usage is not None:
            self.usage = chunk.usage
        out = self._start(chunk.data.get("model"))
        if chunk.content:
            out += self._text(chunk.content)
        if chunk.tool_call:
            choices = chunk.data.get("choices") or []
            delta = choices[0].get("delta") or {}
            for call in delta.get("tool_calls") or []:
                if isinstance(call, dict):
                    out += self._tool(call)
        if chunk.finish_reason:
            self._finish = chunk.finish_reason
        return out

    def finish(self) -> bytes:
        """Close the open block and end the message (an empty stream still ends validly)."""
        if self._ended:
            return b""
        out = self._start() + self._close()
        self._ended = True
        delta = {
            "type": "message_delta",
            "delta": {
                "stop_reason": stop_reason(self._finish, bool(self._tools)),
                "stop_sequence": None,
            },
            "usage": usage_to_anthropic(self.usage),
        }
        return out + sse("message_delta", delta) + sse("message_stop", {"type": "message_stop"})

    def error(self, type: str, message: str) -> bytes:
        """An ``error`` event; the stream ends with it, as Anthropic's does."""
        self._ended = True
        return self._start() + sse("error", error_body(type, message))

    def _start(self, model: object = None) -> bytes:
        if self._started:
            return b""
        self._started = True
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": model if isinstance(model, str) and model else self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_to_anthropic(self.usage or Usage(input_tokens=self.input_tokens)),
        }
        start = sse("message_start", {"type": "message_start", "message": message})
        return start + sse("ping", {"type": "ping"})

    def _text(self, text: str) -> bytes:
        out = b""
        if not self._open_text:
            out = self._close() + self._open_block({"type": "text", "text": ""}, text=True)
        delta = {"type": "text_delta", "text": text}
        return out + sse("content_block_delta", _delta(self._open, delta))

    def _tool(self, call: dict[str, Any]) -> bytes:
        position = call.get("index")
        position = position if isinstance(position, int) else 0
        function = call.get("function") or {}
        out = b""
        block = self._tools.get(position)
        if block is None:
            tool_id = call.get("id") or f"toolu_{self.message_id.removeprefix('msg_')}_{position}"
            name = str(function.get("name") or "")
            out = self._close()
            out += self._open_block(
                {"type": "tool_use", "id": str(tool_id), "name": name, "input": {}}, text=False
            )
            block = self._tools[position] = self._next - 1
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            # A fragment for a call whose block is already closed (servers that interleave
            # calls) goes to that block's index: Anthropic's SDK appends by index, and
            # dropping it would lose arguments.
            delta = {"type": "input_json_delta", "partial_json": arguments}
            out += sse("content_block_delta", _delta(block, delta))
        return out

    def _open_block(self, block: dict[str, Any], *, text: bool) -> bytes:
        self._open, self._open_text = self._next, text
        self._next += 1
        event = {"type": "content_block_start", "index": self._open, "content_block": block}
        return sse("content_block_start", event)

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index, self._open, self._open_text = self._open, None, False
        return sse("content_block_stop", {"type": "content_block_stop", "index": index})


def _delta(index: int | None, delta: dict[str, Any]) -> dict[str, Any]:
    return {"type": "content_block_delta", "index": index, "delta": delta}
