"""Answers for the Anthropic-compatible front door: an OpenAI-shaped ``Completion`` as a
Message, OpenAI stream chunks as Anthropic's stream events, errors in Anthropic's format. Pure."""

from __future__ import annotations

from typing import Any

import orjson

from modelroute.request_fields import THINKING_BLOCKS
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


def stop_fields(
    finish_reason: str | None, has_tool_calls: bool, matched: object
) -> tuple[str, str | None]:
    """``stop_reason`` and ``stop_sequence``. ``matched`` is the choice's ``stop_reason``:
    the stop sequence that ended the answer when the upstream names it (an Anthropic
    upstream, or a server that reports it as vLLM does). OpenAI's API never does, and its
    "stop" is then ``end_turn``: which sequence matched, if any, is not guessed."""
    reason = stop_reason(finish_reason, has_tool_calls)
    if finish_reason == "stop" and reason == "end_turn" and isinstance(matched, str):
        return "stop_sequence", matched
    return reason, None


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
    answer = first.get("message") or {}
    calls = answer.get("tool_calls") or []
    # Thinking first, as Claude writes it (and as it must be sent back in a tool loop).
    content: list[dict[str, Any]] = [
        block for block in answer.get(THINKING_BLOCKS) or () if isinstance(block, dict)
    ]
    if completion.content:
        content.append({"type": "text", "text": completion.content})
    for call in calls:
        if isinstance(call, dict):
            content.append(_tool_use_block(call))
    reason, sequence = stop_fields(completion.finish_reason, bool(calls), first.get("stop_reason"))
    return {
        "id": message_id(completion.body.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": sequence,
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
        self._thinking: dict[int, int] = {}  # thinking_blocks index -> content block index
        self._finish: str | None = None
        self._matched: object = None  # the stop sequence, when the upstream names it

    def feed(self, chunk: StreamChunk) -> bytes:
        if self._ended:
            return b""
        if chunk.usage is not None:
            self.usage = chunk.usage
        out = self._start(chunk.data.get("model"))
        choices = chunk.data.get("choices") or []
        choice = choices[0] if choices and isinstance(choices[0], dict) else {}
        if chunk.thinking:
            for item in (choice.get("delta") or {}).get(THINKING_BLOCKS) or []:
                if isinstance(item, dict):
                    out += self._think(item)
        if chunk.content:
            out += self._text(chunk.content)
        if chunk.tool_call:
            for call in (choice.get("delta") or {}).get("tool_calls") or []:
                if isinstance(call, dict):
                    out += self._tool(call)
        if chunk.finish_reason:
            self._finish = chunk.finish_reason
            self._matched = choice.get("stop_reason")
        return out

    def finish(self) -> bytes:
        """Close the open block and end the message (an empty stream still ends validly)."""
        if self._ended:
            return b""
        out = self._start() + self._close()
        self._ended = True
        reason, sequence = stop_fields(self._finish, bool(self._tools), self._matched)
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": sequence},
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

    def _think(self, item: dict[str, Any]) -> bytes:
        """A piece of a thinking block: its text, its signature, or a whole redacted block."""
        position = item.get("index")
        position = position if isinstance(position, int) else 0
        out = b""
        block = self._thinking.get(position)
        if block is None:
            if item.get("type") == "redacted_thinking":
                start = {"type": "redacted_thinking", "data": str(item.get("data") or "")}
            else:
                start = {"type": "thinking", "thinking": "", "signature": ""}
            out = self._close() + self._open_block(start, text=False)
            block = self._thinking[position] = self._next - 1
        for key, kind in (("thinking", "thinking_delta"), ("signature", "signature_delta")):
            piece = item.get(key)
            if isinstance(piece, str) and piece:
                out += sse("content_block_delta", _delta(block, {"type": kind, key: piece}))
        return out

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
