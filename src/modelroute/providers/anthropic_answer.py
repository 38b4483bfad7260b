"""Anthropic answers in OpenAI shape: a ``message`` as a ``Completion``, stream events as
``chat.completion.chunk`` events. Pure: no I/O, no clock (``created`` is passed in).

What Chat Completions has no field for rides along in the shape OpenAI-compatible servers
use for it: thinking blocks (with their signatures) as the message's ``thinking_blocks``
(streamed as ``delta.thinking_blocks`` pieces, by index like tool calls), and the stop
sequence that ended the answer as the choice's ``stop_reason``, as vLLM reports it."""

from __future__ import annotations

from typing import Any

import orjson

from modelroute.request_fields import THINKING_BLOCKS
from modelroute.types import Completion, StreamChunk, UpstreamError, Usage

_THINKING_KINDS = ("thinking", "redacted_thinking")
_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def finish_reason(stop_reason: object) -> str | None:
    """OpenAI ``finish_reason`` for an Anthropic ``stop_reason`` (unknown ones end as "stop")."""
    if stop_reason is None:
        return None
    return _FINISH.get(str(stop_reason), "stop")


def anthropic_usage(raw: object) -> Usage:
    """Normalised usage from an Anthropic ``usage`` object (input counts cache reads/writes)."""
    if not isinstance(raw, dict):
        return Usage()
    read = _count(raw.get("cache_read_input_tokens"))
    write = _count(raw.get("cache_creation_input_tokens"))
    return Usage(
        input_tokens=_count(raw.get("input_tokens")) + read + write,
        output_tokens=_count(raw.get("output_tokens")),
        cached_input_tokens=read,
        cache_write_tokens=write,
    )


def _count(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def from_anthropic_message(msg: dict[str, Any], created: int) -> Completion:
    """An Anthropic ``message`` as a ``Completion`` with an OpenAI ``chat.completion`` body."""
    content = msg.get("content")
    if not isinstance(content, list):
        raise ValueError("message has no 'content' list")
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    thinking: list[dict[str, Any]] = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(str(block.get("text") or ""))
        elif kind == "tool_use":
            calls.append(_tool_call(block))
        elif kind in _THINKING_KINDS:
            thinking.append(block)
        # server-tool blocks have no place in a chat.completion: skipped
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not calls else None,
        "refusal": None,
    }
    if calls:
        message["tool_calls"] = calls
    if thinking:
        message[THINKING_BLOCKS] = thinking
    usage = anthropic_usage(msg.get("usage"))
    choice = {
        "index": 0,
        "message": message,
        "finish_reason": finish_reason(msg.get("stop_reason")) or "stop",
        "logprobs": None,
    }
    if msg.get("stop_reason") == "stop_sequence" and isinstance(msg.get("stop_sequence"), str):
        choice["stop_reason"] = msg["stop_sequence"]
    body = {
        "id": str(msg.get("id") or ""),
        "object": "chat.completion",
        "created": created,
        "model": str(msg.get("model") or ""),
        "choices": [choice],
        "usage": usage.to_openai(),
    }
    completion = Completion.from_openai(body)
    completion.usage = usage  # the OpenAI usage shape has no field for cache writes
    return completion


def _tool_call(block: dict[str, Any]) -> dict[str, Any]:
    arguments = orjson.dumps(block.get("input") or {}).decode()
    function = {"name": str(block.get("name") or ""), "arguments": arguments}
    return {"id": str(block.get("id") or ""), "type": "function", "function": function}


class StreamTranslator:
    """Anthropic stream events in, OpenAI ``chat.completion.chunk`` events out.

    ``feed`` takes each event as parsed; ``done`` turns True at ``message_stop``, after which
    the final usage chunk (``choices: []``) has been emitted. An ``error`` event raises
    ``UpstreamError(note="stream_error_event")`` with the event as its body.
    """

    def __init__(self, created: int) -> None:
        self.created = created
        self.done = False
        self._id = ""
        self._model = ""
        self._usage: dict[str, Any] = {}
        self._tools: dict[int, int] = {}  # Anthropic block index -> OpenAI tool_calls index
        self._thoughts: dict[int, int] = {}  # Anthropic block index -> thinking_blocks index

    @property
    def usage(self) -> Usage:
        """Cumulative usage so far (message_start, then message_delta totals)."""
        return anthropic_usage(self._usage)

    def feed(self, event: str, data: dict[str, Any]) -> list[StreamChunk]:
        kind = event or str(data.get("type") or "")
        if kind == "error":
            raise UpstreamError(
                note="stream_error_event", body=orjson.dumps(data), detail="error event in stream"
            )
        if kind == "message_start":
            message = data.get("message") or {}
            self._id = str(message.get("id") or "")
            self._model = str(message.get("model") or "")
            self._add_usage(message.get("usage"))
            first = self._chunk({"role": "assistant", "content": ""})
            # The prompt's count is known from here on; a relay that reports usage before the
            # end (Anthropic's own message_start) reads it off this chunk.
            first.usage = self.usage
            return [first]
        if kind == "content_block_start":
            return self._block_start(data)
        if kind == "content_block_delta":
            return self._block_delta(data)
        if kind == "message_delta":
            self._add_usage(data.get("usage"))
            delta = data.get("delta") or {}
            reason = finish_reason(delta.get("stop_reason"))
            if not reason:
                return []
            chunk = self._chunk({}, reason)
            if delta.get("stop_reason") == "stop_sequence":
                sequence = delta.get("stop_sequence")  # named as vLLM names it
                chunk.data["choices"][0]["stop_reason"] = sequence
            return [chunk]
        if kind == "message_stop":
            self.done = True
            return [self._usage_chunk()]
        return []  # ping, content_block_stop, and event types added in the future

    def _add_usage(self, usage: object) -> None:
        # message_delta counts are cumulative totals: they replace, never add.
        if isinstance(usage, dict):
            self._usage.update({k: v for k, v in usage.items() if v is not None})

    def _block_start(self, data: dict[str, Any]) -> list[StreamChunk]:
        block = data.get("content_block") or {}
        kind = block.get("type")
        if kind == "text":
            text = block.get("text")
            return [self._chunk({"content": text})] if isinstance(text, str) and text else []
        if kind in _THINKING_KINDS:
            return self._thinking_start(data, block)
        if kind != "tool_use":
            return []  # server-tool blocks are not part of a chat completion
        position = len(self._tools)
        self._tools[_index(data)] = position
        # The real API starts input as {} and streams it; a filled one is sent whole.
        start_input = block.get("input")
        arguments = orjson.dumps(start_input).decode() if start_input else ""
        function = {"name": str(block.get("name") or ""), "arguments": arguments}
        call = {"index": position, "id": block.get("id"), "type": "function", "function": function}
        return [self._chunk({"tool_calls": [call]})]

    def _block_delta(self, data: dict[str, Any]) -> list[StreamChunk]:
        delta = data.get("delta") or {}
        kind = delta.get("type")
        if kind == "text_delta":
            text = delta.get("text")
            return [self._chunk({"content": text})] if isinstance(text, str) and text else []
        if kind == "input_json_delta":
            position = self._tools.get(_index(data))
            partial = delta.get("partial_json")
            if position is None or not isinstance(partial, str) or not partial:
                return []
            call = {"index": position, "function": {"arguments": partial}}
            return [self._chunk({"tool_calls": [call]})]
        key = _THINKING_DELTAS.get(str(kind))
        position = self._thoughts.get(_index(data))
        piece = delta.get(key) if key is not None else None
        if position is None or not isinstance(piece, str) or not piece:
            return []  # citation deltas, and deltas of blocks not seen to start
        item = {"index": position, "type": "thinking", str(key): piece}
        return [self._chunk({THINKING_BLOCKS: [item]})]

    def _thinking_start(self, data: dict[str, Any], block: dict[str, Any]) -> list[StreamChunk]:
        """A thinking block becomes ``thinking_blocks`` deltas (by the block's position among
        the thinking blocks, as tool calls go by theirs); a redacted one arrives whole."""
        position = self._thoughts[_index(data)] = len(self._thoughts)
        item = {k: v for k, v in block.items() if v} | {"index": position}
        if block.get("type") == "thinking" and len(item) == 2:
            return []  # an empty start: the deltas carry its text and signature
        return [self._chunk({THINKING_BLOCKS: [item]})]

    def _chunk(self, delta: dict[str, Any], finish: str | None = None) -> StreamChunk:
        choice = {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}
        return StreamChunk.from_openai({**self._head(), "choices": [choice]})

    def _usage_chunk(self) -> StreamChunk:
        usage = self.usage
        chunk = StreamChunk.from_openai({**self._head(), "choices": [], "usage": usage.to_openai()})
        chunk.usage = usage  # keeps cache writes, which the OpenAI usage shape cannot carry
        return chunk

    def _head(self) -> dict[str, Any]:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self._model,
        }


_THINKING_DELTAS = {"thinking_delta": "thinking", "signature_delta": "signature"}


def _index(data: dict[str, Any]) -> int:
    index = data.get("index")
    return index if isinstance(index, int) else 0
