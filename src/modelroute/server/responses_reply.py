"""Answers of the Responses API front door: a ``Completion`` as a ``response`` object, and a
stream's chunks as the Responses API's events. Pure.

An answer the upstream gave in the Responses API's own terms (a model with the ``responses``
capability) goes back as it came: the object, or each event as sent. An answer bridged
through Chat Completions is translated, in the documented sequence: ``response.created``,
``response.in_progress``, per output item ``response.output_item.added``, its content
(``response.content_part.added``, ``response.output_text.delta``...,
``response.output_text.done``, ``response.content_part.done``; or
``response.function_call_arguments.delta``..., ``.done``), ``response.output_item.done``,
then ``response.completed`` (``response.incomplete`` when the output limit cut it). A stream
that breaks after its first byte ends with an ``error`` event and ``response.failed``.
"""

from __future__ import annotations

from typing import Any

import orjson

from modelroute.types import Completion, StreamChunk, Usage

_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
# Request fields a response object repeats, with the API's defaults.
_ECHOED: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "reasoning": None,
    "service_tier": None,
    "temperature": None,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_logprobs": None,
    "top_p": None,
    "truncation": "disabled",
    "user": None,
}
_ERROR_CODES = {"rate_limited": "rate_limit_exceeded"}


def usage_object(usage: Usage | None) -> dict[str, Any] | None:
    if usage is None:
        return None
    return {
        "input_tokens": usage.input_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cached_input_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def response_object(
    request: dict[str, Any],
    response_id: str,
    model: str,
    created_at: int,
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None = None,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    """A ``response`` object; ``finish_reason`` (Chat Completions') says why it is
    incomplete when ``status`` is ``incomplete``."""
    echoed = {key: _echo(request.get(key), default) for key, default in _ECHOED.items()}
    incomplete = None
    if status == "incomplete":
        incomplete = {"reason": _INCOMPLETE.get(finish_reason or "", "max_output_tokens")}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": incomplete,
        **echoed,
        "model": model,
        "output": output,
        "usage": usage_object(usage),
    }


def _echo(sent: object, default: Any) -> Any:
    """A parameter as sent; its default when sent as ``null`` (the API's own reading)."""
    return default if sent is None else sent


def status_of(finish_reason: str | None) -> str:
    return "incomplete" if finish_reason in _INCOMPLETE else "completed"


def completion_to_response(
    completion: Completion, request: dict[str, Any], response_id: str, model: str, created_at: int
) -> dict[str, Any]:
    """A bridged answer as a ``response`` object (a native one is returned as it came)."""
    if completion.response is not None:
        return completion.response
    choices = completion.body.get("choices") or []
    first = choices[0] if choices and isinstance(choices[0], dict) else {}
    message = first.get("message") or {}
    status = status_of(completion.finish_reason)
    tail = response_id.removeprefix("resp_")
    output: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    if completion.content:
        part = text_part(completion.content)
        logprobs = (first.get("logprobs") or {}).get("content")
        if isinstance(logprobs, list):
            part["logprobs"] = [_logprob(item) for item in logprobs if isinstance(item, dict)]
        parts.append(part)
    if isinstance(message.get("refusal"), str) and message["refusal"]:
        parts.append({"type": "refusal", "refusal": message["refusal"]})
    if parts:
        output.append(_message_item(f"msg_{tail}", status, parts))
    for i, call in enumerate(message.get("tool_calls") or ()):
        if isinstance(call, dict):
            function = call.get("function") or {}
            output.append(
                _call_item(
                    f"fc_{tail}_{i}",
                    str(call.get("id") or f"call_{tail}_{i}"),
                    str(function.get("name") or ""),
                    str(function.get("arguments") or ""),
                    "completed",
                )
            )
    return response_object(
        request, response_id, model, created_at, status, output, completion.usage,
        completion.finish_reason,
    )  # fmt: skip


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _logprob(item: dict[str, Any]) -> dict[str, Any]:
    token = str(item.get("token") or "")
    top = [
        {"token": str(t.get("token") or ""), "logprob": t.get("logprob"), "bytes": t.get("bytes")}
        for t in item.get("top_logprobs") or ()
        if isinstance(t, dict)
    ]
    return {
        "token": token,
        "logprob": item.get("logprob"),
        "bytes": item.get("bytes") or list(token.encode()),
        "top_logprobs": top,
    }


def _chunk_logprobs(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The tokens of a Chat Completions chunk's logprobs (choice 0), as a text part keeps
    them (an upstream sends them only when the client asked: a cascade's early answer, asked
    on the router's account, reaches the client without them)."""
    choices = data.get("choices") or []
    first = choices[0] if choices and isinstance(choices[0], dict) else {}
    content = (first.get("logprobs") or {}).get("content")
    if not isinstance(content, list):
        return []
    return [_logprob(item) for item in content if isinstance(item, dict)]


def event_logprob(logprob: dict[str, Any]) -> dict[str, Any]:
    """A text part's logprob as the delta and done events carry it (without the bytes)."""
    top = [
        {"token": t.get("token"), "logprob": t.get("logprob")}
        for t in logprob.get("top_logprobs") or ()
        if isinstance(t, dict)
    ]
    return {"token": logprob.get("token"), "logprob": logprob.get("logprob"), "top_logprobs": top}


def _message_item(item_id: str, status: str, content: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "message",
        "id": item_id,
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _call_item(
    item_id: str, call_id: str, name: str, arguments: str, status: str
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def _final_response(raw: bytes) -> dict[str, Any] | None:
    """The response a native stream's last event carries (its chunk's data is the Chat
    Completions reading of it: the event itself is parsed again, once per stream)."""
    try:
        event = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    response = event.get("response") if isinstance(event, dict) else None
    return response if isinstance(response, dict) else None


def encode_event(event: dict[str, Any], sequence_number: int) -> bytes:
    """One event as the door sends it (SSE, named by its type), numbered
    ``sequence_number``: every event the door makes, live or replayed, is encoded here."""
    event["sequence_number"] = sequence_number
    name = str(event["type"]).encode()
    return b"event: " + name + b"\ndata: " + orjson.dumps(event) + b"\n\n"


class StreamToResponses:
    """Stream chunks in, Responses API events (SSE bytes) out. Native events (``event`` set
    on the chunk) pass as sent; Chat Completions chunks are translated."""

    def __init__(
        self, request: dict[str, Any], response_id: str, model: str, created_at: int
    ) -> None:
        self.request = request
        self.response_id = response_id
        self.model = model
        self.created_at = created_at
        self._seq = 0
        self._started = False
        self._ended = False
        self._output: list[dict[str, Any]] = []  # items done
        self._text: dict[str, Any] | None = None  # the open message item, its text in "text"
        self._calls: dict[int, dict[str, Any]] = {}  # open function calls by chunk index
        self._finish: str | None = None
        self._usage: Usage | None = None
        # the response the stream ended with (completed or incomplete); None until then
        self.final: dict[str, Any] | None = None
        self.native = False  # the upstream spoke the Responses API (its events pass as sent)

    def feed(self, chunk: StreamChunk) -> bytes:
        if self._ended:
            return b""
        if chunk.event is not None:
            return self._native(chunk)
        if chunk.usage is not None:
            self._usage = chunk.usage
        out = self._start(chunk.data.get("model"))
        if chunk.content:
            out += self._delta(chunk.content, _chunk_logprobs(chunk.data))
        if chunk.tool_call:
            choices = chunk.data.get("choices") or []
            delta = (choices[0].get("delta") or {}) if choices else {}
            for call in delta.get("tool_calls") or ():
                if isinstance(call, dict):
                    out += self._call(call)
        if chunk.finish_reason:
            self._finish = chunk.finish_reason
        return out

    def finish(self) -> bytes:
        if self._ended:
            return b""
        out = self._start() + self._close_all()
        self._ended = True
        status = status_of(self._finish)
        response = self.final = self._response(status, self._usage)
        return out + self._event({"type": f"response.{status}", "response": response})

    def error(self, code: str, message: str) -> bytes:
        """An ``error`` event and ``response.failed``: the stream ends with them."""
        out = self._start()
        self._ended = True
        code = _ERROR_CODES.get(code, "server_error")
        out += self._event({"type": "error", "code": code, "message": message, "param": None})
        failed = self._response("failed", self._usage)
        failed["error"] = {"code": code, "message": message}
        return out + self._event({"type": "response.failed", "response": failed})

    # -- native events -----------------------------------------------------------------------

    def _native(self, chunk: StreamChunk) -> bytes:
        assert chunk.event is not None and chunk.raw is not None
        self._started = self.native = True
        self._seq += 1
        if chunk.data.get("id"):
            self.response_id = str(chunk.data["id"])
        if chunk.data.get("model"):
            self.model = str(chunk.data["model"])
        if chunk.event in ("response.completed", "response.incomplete"):
            self._ended = True
            self.final = _final_response(chunk.raw)
        raw: bytes = chunk.raw
        return b"event: " + chunk.event.encode() + b"\ndata: " + raw + b"\n\n"

    # -- translated events ---------------------------------------------------------------------

    def _event(self, event: dict[str, Any]) -> bytes:
        self._seq += 1
        return encode_event(event, self._seq - 1)

    def _response(self, status: str, usage: Usage | None) -> dict[str, Any]:
        return response_object(
            self.request, self.response_id, self.model, self.created_at, status,
            list(self._output), usage, self._finish,
        )  # fmt: skip

    def _start(self, model: object = None) -> bytes:
        if self._started:
            return b""
        self._started = True
        if isinstance(model, str) and model:
            self.model = model
        response = self._response("in_progress", None)
        created = self._event({"type": "response.created", "response": response})
        return created + self._event({"type": "response.in_progress", "response": response})

    def _tail(self) -> str:
        return self.response_id.removeprefix("resp_")

    def _delta(self, text: str, logprobs: list[dict[str, Any]]) -> bytes:
        out = b""
        item = self._text
        if item is None:
            out += self._close_calls()
            index = len(self._output)
            item = self._text = _message_item(f"msg_{self._tail()}_{index}", "in_progress", [])
            item["index"] = index
            out += self._added(index, {k: v for k, v in item.items() if k != "index"})
            where = {"item_id": item["id"], "output_index": index, "content_index": 0}
            part = {"type": "response.content_part.added", **where, "part": text_part("")}
            out += self._event(part)
            item["text"], item["logprobs"] = "", []
        item["text"] += text
        item["logprobs"] += logprobs
        where = {"item_id": item["id"], "output_index": item["index"], "content_index": 0}
        delta = {"type": "response.output_text.delta", **where, "delta": text}
        return out + self._event({**delta, "logprobs": [event_logprob(lp) for lp in logprobs]})

    def _call(self, call: dict[str, Any]) -> bytes:
        index_given = call.get("index")
        position = index_given if isinstance(index_given, int) else 0
        function = call.get("function") or {}
        out = b""
        item = self._calls.get(position)
        if item is None:
            out += self._close_text()
            index = len(self._output) + len(self._calls)
            call_id = str(call.get("id") or f"call_{self._tail()}_{index}")
            name = str(function.get("name") or "")
            item = _call_item(f"fc_{self._tail()}_{index}", call_id, name, "", "in_progress")
            out += self._added(index, item)
            item = self._calls[position] = {**item, "index": index}
        piece = function.get("arguments")
        if isinstance(piece, str) and piece:
            item["arguments"] += piece
            out += self._event(
                {
                    "type": "response.function_call_arguments.delta",
                    "item_id": item["id"],
                    "output_index": item["index"],
                    "delta": piece,
                }
            )
        return out

    def _added(self, index: int, item: dict[str, Any]) -> bytes:
        return self._event(
            {"type": "response.output_item.added", "output_index": index, "item": item}
        )

    def _close_all(self) -> bytes:
        return self._close_text() + self._close_calls()

    def _close_text(self) -> bytes:
        item, self._text = self._text, None
        if item is None:
            return b""
        index, text, logprobs = item["index"], item["text"], item["logprobs"]
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        text_done = {"type": "response.output_text.done", **where, "text": text}
        out = self._event({**text_done, "logprobs": [event_logprob(lp) for lp in logprobs]})
        part = text_part(text)
        part["logprobs"] = logprobs
        out += self._event({"type": "response.content_part.done", **where, "part": part})
        done = _message_item(item["id"], status_of(self._finish), [part])
        self._output.append(done)
        return out + self._event(
            {"type": "response.output_item.done", "output_index": index, "item": done}
        )

    def _close_calls(self) -> bytes:
        out = b""
        for item in sorted(self._calls.values(), key=lambda i: int(i["index"])):
            index = item.pop("index")
            item["status"] = "completed"
            out += self._event(
                {
                    "type": "response.function_call_arguments.done",
                    "item_id": item["id"],
                    "output_index": index,
                    "name": item["name"],
                    "arguments": item["arguments"],
                }
            )
            self._output.append(item)
            out += self._event(
                {"type": "response.output_item.done", "output_index": index, "item": item}
            )
        self._calls.clear()
        return out
