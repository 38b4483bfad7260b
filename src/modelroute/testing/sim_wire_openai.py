"""The OpenAI Chat Completions wire format, as the simulator speaks it.

Shapes follow the real API closely enough for the official ``openai`` SDK to parse them,
streaming included: ``chat.completion`` bodies, ``chat.completion.chunk`` SSE events ending
in ``data: [DONE]``, and ``{"error": {message, type, param, code}}`` errors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import orjson

from modelroute.testing.sim_engine import (
    ContextOverflow,
    Reply,
    SimRequest,
    estimate_prompt_tokens,
    top_alternatives,
)
from modelroute.testing.sim_openai_rules import check_request
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

_FINISH = {"stop": "stop", "length": "length", "tool": "tool_calls", "stop_sequence": "stop"}
_DONE = b"data: [DONE]\n\n"


def _error(status: int, message: str, type_: str, code: str | None, param: str | None) -> WireError:
    body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
    return WireError(status, orjson.dumps(body))


class OpenAIWire:
    """``POST /v1/chat/completions``."""

    name = "openai"
    request_id_header = "x-request-id"

    # -- requests -----------------------------------------------------------------------

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool:
        return headers.get("Authorization") == f"Bearer {api_key}"

    def parse(self, body: dict[str, Any]) -> SimRequest:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("you must provide a model parameter", "model")
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise BadRequest("Invalid 'messages': expected a non-empty array.", "messages")
        texts, match_text, after_tool = _read_messages(messages)
        logprobs = optional_bool(body, "logprobs")
        top = optional_int(body, "top_logprobs", 0) or 0
        if top > 20:
            raise BadRequest("Invalid 'top_logprobs': must be <= 20.", "top_logprobs")
        if top and not logprobs:
            raise BadRequest("Invalid 'top_logprobs': requires 'logprobs' to be true.", "logprobs")
        max_tokens = optional_int(body, "max_completion_tokens", 1)
        if max_tokens is None:
            max_tokens = optional_int(body, "max_tokens", 1)
        stream = optional_bool(body, "stream")
        options = body.get("stream_options")
        asked = check_request(body, stream, "\n".join(texts))
        return SimRequest(
            model=model,
            stream=stream,
            max_tokens=max_tokens,
            match_text=match_text,
            prompt_tokens=estimate_prompt_tokens(texts, len(messages)),
            tool_names=_tool_names(body.get("tools")),
            after_tool_result=after_tool,
            stop=string_list(body.get("stop"), "stop"),
            logprobs=logprobs,
            top_logprobs=top,
            include_usage=isinstance(options, dict) and options.get("include_usage") is True,
            n=asked.n,
            json_mode=asked.json_mode,
            json_schema=asked.json_schema,
            tools_allowed=asked.tools_allowed,
            messages=messages,
            texts=texts,
        )

    # -- complete bodies ------------------------------------------------------------------

    def completion(self, x: Exchange) -> bytes:
        reply = x.reply
        message: dict[str, Any] = {
            "role": "assistant",
            "content": reply.content,
            "refusal": None,
            "annotations": [],
        }
        if reply.tool is not None:
            message["content"] = None
            message["tool_calls"] = [
                {
                    "id": f"call_{x.token}",
                    "type": "function",
                    "function": {"name": reply.tool.name, "arguments": reply.tool.arguments_json},
                }
            ]
        logprobs = _logprobs(x, range(len(reply.tokens))) if x.req.logprobs else None
        finish = _FINISH[reply.finish]
        body = _envelope(x, "chat.completion")
        # n choices of the same answer: the simulator is deterministic, like temperature 0.
        body["choices"] = [
            {"index": i, "message": message, "logprobs": logprobs, "finish_reason": finish}
            for i in range(x.req.n)
        ]
        body["usage"] = _usage(x)
        return orjson.dumps(body)

    def malformed_body(self, x: Exchange) -> bytes:
        # A body cut off mid-value: the status says 200, the JSON parser must say no.
        head = f'{{"id": "chatcmpl-{x.token}", "object": "chat.completion", "choices": [{{"ind'
        return head.encode()

    # -- streams ---------------------------------------------------------------------------

    def stream_head(self, x: Exchange) -> bytes:
        reply = x.reply
        delta: dict[str, Any] = {"role": "assistant", "content": "", "refusal": None}
        if reply.tool is not None:
            delta["content"] = None
            delta["tool_calls"] = [
                {
                    "index": 0,
                    "id": f"call_{x.token}",
                    "type": "function",
                    "function": {"name": reply.tool.name, "arguments": ""},
                }
            ]
        return _chunk(x, delta)

    def stream_piece(self, x: Exchange, i: int) -> bytes:
        reply = x.reply
        if reply.tool is not None:
            args = {"tool_calls": [{"index": 0, "function": {"arguments": reply.tool_pieces[i]}}]}
            return _chunk(x, args)
        logprobs = _logprobs(x, (i,)) if x.req.logprobs else None
        return _chunk(x, {"content": reply.tokens[i]}, logprobs=logprobs)

    def stream_tail(self, x: Exchange) -> bytes:
        out = _chunk(x, {}, finish=_FINISH[x.reply.finish])
        if x.req.include_usage:
            body = _envelope(x, "chat.completion.chunk")
            body["choices"] = []
            body["usage"] = _usage(x)
            out += sse(orjson.dumps(body))
        return out + _DONE

    def stream_malformed(self, x: Exchange) -> bytes:
        return sse(
            f'{{"id": "chatcmpl-{x.token}", "object": "chat.completion.chunk", "cho'.encode()
        )

    def stream_error(self) -> bytes:
        # What OpenAI sends when a stream fails after the 200: a data line with "error".
        return sse(orjson.dumps({"error": _server_error_fields()}))

    # -- errors ----------------------------------------------------------------------------

    def unauthorized(self) -> WireError:
        return _error(
            401,
            "Incorrect API key provided. You can find your API key in your account settings.",
            "invalid_request_error",
            "invalid_api_key",
            None,
        )

    def bad_request(
        self, message: str, param: str | None = None, code: str | None = None
    ) -> WireError:
        return _error(400, message, "invalid_request_error", code, param)

    def not_found(self, model: str) -> WireError:
        message = f"The model `{model}` does not exist or you do not have access to it."
        return _error(404, message, "invalid_request_error", "model_not_found", None)

    def context_length(self, overflow: ContextOverflow) -> WireError:
        total = overflow.prompt_tokens + overflow.completion_tokens
        message = (
            f"This model's maximum context length is {overflow.window} tokens. However, you "
            f"requested {total} tokens ({overflow.prompt_tokens} in the messages, "
            f"{overflow.completion_tokens} in the completion). Please reduce the length of "
            "the messages or completion."
        )
        return _error(400, message, "invalid_request_error", "context_length_exceeded", "messages")

    def server_error(self) -> WireError:
        return WireError(500, orjson.dumps({"error": _server_error_fields()}))

    def overloaded(self) -> WireError:
        message = "The server is overloaded or not ready yet."
        return _error(503, message, "server_error", "overloaded", None)

    def rate_limited(self, model: str, retry_after_s: float) -> WireError:
        message = (
            f"Rate limit reached for {model} in organization org-simulator on requests per min "
            f"(RPM): Limit 60, Used 60, Requested 1. Please try again in {retry_after_s:g}s."
        )
        return _error(429, message, "requests", "rate_limit_exceeded", None)


def _server_error_fields() -> dict[str, Any]:
    return {
        "message": "The server had an error while processing your request. Sorry about that!",
        "type": "server_error",
        "param": None,
        "code": None,
    }


def _read_messages(messages: list[Any]) -> tuple[list[str], str, bool]:
    """All message texts (for the token estimate), the last user/tool text, and whether
    that last one is a tool result (then the model answers instead of calling again)."""
    texts: list[str] = []
    match_text = ""
    after_tool = False
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str):
            raise BadRequest(f"Invalid 'messages[{i}]': expected an object with a 'role'.")
        text = text_of(message.get("content"))
        texts.append(text)
        role = message["role"]
        if role in ("user", "tool"):
            match_text = text
            after_tool = role == "tool"
    return texts, match_text, after_tool


def _tool_names(tools: object) -> frozenset[str]:
    if tools is None:
        return frozenset()
    if not isinstance(tools, list):
        raise BadRequest("Invalid type for 'tools': expected an array.", "tools")
    names = set()
    for tool in tools:
        function = tool.get("function") if isinstance(tool, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not isinstance(name, str):
            raise BadRequest("Invalid 'tools': each tool needs 'function.name'.", "tools")
        names.add(name)
    return frozenset(names)


def _envelope(x: Exchange, obj: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{x.token}",
        "object": obj,
        "created": x.created,
        "model": x.model,
        "system_fingerprint": x.fingerprint,
        "service_tier": "default",
    }


def _chunk(
    x: Exchange, delta: dict[str, Any], *, finish: str | None = None, logprobs: Any = None
) -> bytes:
    """One event per choice: with ``n`` > 1, OpenAI streams each choice in its own chunks."""
    out = b""
    for index in range(x.req.n):
        body = _envelope(x, "chat.completion.chunk")
        choice = {"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": finish}
        body["choices"] = [choice]
        if x.req.include_usage:
            # With include_usage, OpenAI puts "usage": null on every chunk but the last.
            body["usage"] = None
        out += sse(orjson.dumps(body))
    return out


def _usage(x: Exchange) -> dict[str, Any]:
    prompt, completion = x.req.prompt_tokens, x.reply.completion_tokens * x.req.n
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": x.cached_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def _logprobs(x: Exchange, indices: Iterable[int]) -> dict[str, Any]:
    reply: Reply = x.reply
    k = x.req.top_logprobs
    content = []
    for i in indices:
        token, lp = reply.tokens[i], reply.logprobs[i]
        content.append(
            {
                "token": token,
                "logprob": lp,
                "bytes": list(token.encode()),
                "top_logprobs": [
                    {"token": t, "logprob": v, "bytes": list(t.encode())}
                    for t, v in top_alternatives(token, lp, k)
                ],
            }
        )
    return {"content": content, "refusal": None}
