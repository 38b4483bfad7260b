"""The Anthropic Messages wire format, as the simulator speaks it.

Bodies are ``message`` objects with text or ``tool_use`` blocks, after a ``thinking`` block
when the request asks for thinking (``sim_thinking`` has its rules); unknown top-level fields
are refused as the real API refuses them. Streams follow the real event sequence
(message_start, content_block_start, ping, content_block_delta..., content_block_stop,
message_delta, message_stop); errors are
``{"type": "error", "error": {"type": ..., "message": ...}}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelroute.testing.sim_engine import ContextOverflow, SimRequest, estimate_prompt_tokens
from modelroute.testing.sim_thinking import THOUGHT_TOKENS, check_history, thinking_block, thinks
from modelroute.testing.sim_wire import (
    BadRequest,
    Exchange,
    WireError,
    optional_bool,
    optional_int,
    sse,
    string_list,
    text_of,
)

_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool": "tool_use",
    "stop_sequence": "stop_sequence",
}
# The top-level fields of a Messages request; the real API refuses any other.
_FIELDS = frozenset(
    {
        "model", "messages", "max_tokens", "system", "metadata", "stop_sequences", "stream",
        "temperature", "top_p", "top_k", "tools", "tool_choice", "thinking", "service_tier",
        "container", "mcp_servers", "context_management", "output_config", "cache_control",
        "inference_geo", "speed", "diagnostics", "user_profile_id", "workspace_id",
    }
)  # fmt: skip
_SERVICE_TIERS = ("auto", "standard_only")
_PING = sse(b'{"type":"ping"}', "ping")
_MESSAGE_STOP = sse(b'{"type":"message_stop"}', "message_stop")


def _error(status: int, type_: str, message: str, reason: str | None = None) -> WireError:
    body = {"type": "error", "error": {"type": type_, "message": message}}
    return WireError(status, orjson.dumps(body), reason)


class AnthropicWire:
    """``POST /v1/messages``."""

    name = "anthropic"
    request_id_header = "request-id"

    # -- requests -----------------------------------------------------------------------

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool:
        return headers.get("x-api-key") == api_key

    def parse(self, body: dict[str, Any]) -> SimRequest:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("model: Field required")
        max_tokens = optional_int(body, "max_tokens", 1)
        if max_tokens is None:
            raise BadRequest("max_tokens: Field required")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("messages: at least one message is required")
        _check_fields(body)
        thinking = thinks(body, max_tokens)
        texts, match_text, after_tool = _read_messages(messages)
        _check_metadata(body.get("metadata"))
        check_history(messages, thinking)
        system = body.get("system")
        n_messages = len(messages)
        if system is not None:
            if not isinstance(system, str | list):
                raise BadRequest("system: Input should be a valid string or list of blocks")
            texts.append(text_of(system))
            n_messages += 1
        return SimRequest(
            model=model,
            stream=optional_bool(body, "stream"),
            max_tokens=max_tokens,
            match_text=match_text,
            prompt_tokens=estimate_prompt_tokens(texts, n_messages),
            tool_names=_tool_names(body.get("tools")),
            after_tool_result=after_tool,
            stop=string_list(body.get("stop_sequences"), "stop_sequences"),
            thinking=thinking,
        )

    # -- complete bodies ------------------------------------------------------------------

    def completion(self, x: Exchange) -> bytes:
        body = _message(x)
        body["content"] = ([thinking_block()] if x.req.thinking else []) + _blocks(x)
        body["stop_reason"], body["stop_sequence"] = _stop(x)
        body["usage"] = _usage(x.req.prompt_tokens, _output_tokens(x))
        return orjson.dumps(body)

    def malformed_body(self, x: Exchange) -> bytes:
        # A body cut off mid-value: the status says 200, the JSON parser must say no.
        return f'{{"id": "msg_{x.token}", "type": "message", "role": "assistant", "cont'.encode()

    # -- streams ---------------------------------------------------------------------------

    def stream_head(self, x: Exchange) -> bytes:
        message = _message(x)
        message["content"] = []
        message["stop_reason"] = None
        message["stop_sequence"] = None
        # message_start reports output_tokens 1 like the real API; message_delta has the total.
        message["usage"] = _usage(x.req.prompt_tokens, 1)
        out = sse(orjson.dumps({"type": "message_start", "message": message}), "message_start")
        if x.req.thinking:
            out += _thinking_events()
        block = _open_block(x)
        if block is not None:
            start = {"type": "content_block_start", "index": _first(x), "content_block": block}
            out += sse(orjson.dumps(start), "content_block_start")
        return out + _PING

    def stream_piece(self, x: Exchange, i: int) -> bytes:
        reply = x.reply
        if reply.tool is not None:
            delta = {"type": "input_json_delta", "partial_json": reply.tool_pieces[i]}
        else:
            delta = {"type": "text_delta", "text": reply.tokens[i]}
        event = {"type": "content_block_delta", "index": _first(x), "delta": delta}
        return sse(orjson.dumps(event), "content_block_delta")

    def stream_tail(self, x: Exchange) -> bytes:
        out = b""
        if _open_block(x) is not None:
            stop_block = {"type": "content_block_stop", "index": _first(x)}
            out += sse(orjson.dumps(stop_block), "content_block_stop")
        stop_reason, stop_sequence = _stop(x)
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": stop_sequence},
            "usage": {"output_tokens": _output_tokens(x)},
        }
        return out + sse(orjson.dumps(delta), "message_delta") + _MESSAGE_STOP

    def stream_malformed(self, x: Exchange) -> bytes:
        return sse(
            b'{"type":"content_block_delta","index":0,"delta":{"type":"text_del',
            "content_block_delta",
        )

    def stream_error(self) -> bytes:
        # Anthropic reports overload after the 200 as an SSE "error" event.
        body = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
        return sse(orjson.dumps(body), "error")

    # -- errors ----------------------------------------------------------------------------

    def unauthorized(self) -> WireError:
        return _error(401, "authentication_error", "invalid x-api-key")

    def bad_request(
        self, message: str, param: str | None = None, code: str | None = None
    ) -> WireError:
        return _error(400, "invalid_request_error", message)

    def not_found(self, model: str) -> WireError:
        return _error(404, "not_found_error", f"model: {model}")

    def context_length(self, overflow: ContextOverflow) -> WireError:
        # The real API words the two cases differently; classifiers should handle both.
        if overflow.prompt_tokens > overflow.window:
            message = (
                f"prompt is too long: {overflow.prompt_tokens} tokens > {overflow.window} maximum"
            )
        else:
            message = (
                f"input length and `max_tokens` exceed context limit: {overflow.prompt_tokens} "
                f"+ {overflow.completion_tokens} > {overflow.window}, decrease input length or "
                "`max_tokens` and try again"
            )
        return _error(400, "invalid_request_error", message)

    def server_error(self) -> WireError:
        return _error(500, "api_error", "Internal server error")

    def overloaded(self) -> WireError:
        return _error(529, "overloaded_error", "Overloaded", reason="Overloaded")

    def rate_limited(self, model: str, retry_after_s: float) -> WireError:
        message = (
            "This request would exceed the rate limit for your organization of 50 requests per "
            f"minute for {model}. Please try again in {retry_after_s:g}s."
        )
        return _error(429, "rate_limit_error", message)


def _check_fields(body: dict[str, Any]) -> None:
    unknown = next((key for key in body if key not in _FIELDS), None)
    if unknown is not None:
        raise BadRequest(f"{unknown}: Extra inputs are not permitted")
    top_k = body.get("top_k")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise BadRequest("top_k: Input should be an integer greater than or equal to 0")
    tier = body.get("service_tier")
    if tier is not None and tier not in _SERVICE_TIERS:
        raise BadRequest("service_tier: Input should be 'auto' or 'standard_only'")


def _first(x: Exchange) -> int:
    """The index of the answer's block: after the thinking block when there is one."""
    return 1 if x.req.thinking else 0


def _output_tokens(x: Exchange) -> int:
    thought = len(THOUGHT_TOKENS) if x.req.thinking else 0
    return x.reply.completion_tokens + thought


def _thinking_events() -> bytes:
    """Block 0: the thinking, piece by piece, then its signature (as the real API does)."""
    block = thinking_block()
    start = {"type": "thinking", "thinking": "", "signature": ""}
    events = [("content_block_start", {"index": 0, "content_block": start})]
    for piece in THOUGHT_TOKENS:
        delta = {"type": "thinking_delta", "thinking": piece}
        events.append(("content_block_delta", {"index": 0, "delta": delta}))
    delta = {"type": "signature_delta", "signature": block["signature"]}
    events += [("content_block_delta", {"index": 0, "delta": delta})]
    events += [("content_block_stop", {"index": 0})]
    return b"".join(sse(orjson.dumps({"type": name, **data}), name) for name, data in events)


def _read_messages(messages: list[Any]) -> tuple[list[str], str, bool]:
    """All message texts, the last user text, and whether it carries tool results."""
    texts: list[str] = []
    match_text = ""
    after_tool = False
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            raise BadRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        content = message.get("content")
        text, has_tool_result = _user_text(content)
        texts.append(text)
        if message["role"] == "user":
            match_text, after_tool = text, has_tool_result
    return texts, match_text, after_tool


def _user_text(content: object) -> tuple[str, bool]:
    """Text of a content; tool_result blocks contribute their own (nested) content."""
    if not isinstance(content, list):
        return text_of(content), False
    parts: list[str] = []
    has_tool_result = False
    for block in content:
        if isinstance(block, dict) and block.get("type") == "tool_result":
            has_tool_result = True
            parts.append(text_of(block.get("content")))
        elif isinstance(block, dict) and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "".join(parts), has_tool_result


def _tool_names(tools: object) -> frozenset[str]:
    if tools is None:
        return frozenset()
    if not isinstance(tools, list):
        raise BadRequest("tools: Input should be a valid list")
    names = set()
    for i, tool in enumerate(tools):
        name = tool.get("name") if isinstance(tool, dict) else None
        if not isinstance(name, str):
            raise BadRequest(f"tools.{i}.name: Field required")
        names.add(name)
    return frozenset(names)


def _message(x: Exchange) -> dict[str, Any]:
    return {"id": f"msg_{x.token}", "type": "message", "role": "assistant", "model": x.model}


def _open_block(x: Exchange) -> dict[str, Any] | None:
    """The block a stream opens, or None for an empty reply (no block at all)."""
    reply = x.reply
    if reply.tool is not None:
        return {"type": "tool_use", "id": f"toolu_{x.token}", "name": reply.tool.name, "input": {}}
    return {"type": "text", "text": ""} if reply.tokens else None


def _check_metadata(metadata: object) -> None:
    """Anthropic's ``metadata`` holds one optional field, ``user_id`` (a string of at most
    256 characters); anything else is refused."""
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise BadRequest("metadata: Input should be a valid dictionary")
    for key, value in metadata.items():
        if key != "user_id":
            raise BadRequest(f"metadata.{key}: Extra inputs are not permitted")
        if value is not None and (not isinstance(value, str) or len(value) > 256):
            raise BadRequest("metadata.user_id: Input should be a string of at most 256 characters")


def _blocks(x: Exchange) -> list[dict[str, Any]]:
    reply = x.reply
    if reply.tool is not None:
        tool = reply.tool
        return [
            {
                "type": "tool_use",
                "id": f"toolu_{x.token}",
                "name": tool.name,
                "input": tool.arguments,
            }
        ]
    return [{"type": "text", "text": reply.content}] if reply.tokens else []


def _stop(x: Exchange) -> tuple[str, str | None]:
    reply = x.reply
    return _STOP[reply.finish], reply.stop_sequence


def _usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
    }
