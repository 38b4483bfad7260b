"""OpenAI's Responses API wire format (``POST /v1/responses``), as the simulator speaks it.

Bodies are ``response`` objects; streams are the documented event sequence, each event
named and numbered: ``response.created``, ``response.in_progress``, then per output item
``response.output_item.added``, its content (``response.content_part.added``,
``response.output_text.delta``..., ``response.output_text.done``,
``response.content_part.done``; or ``response.function_call_arguments.delta``...,
``.done``), ``response.output_item.done``, and ``response.completed`` (``response.incomplete``
when the output limit cut the answer). A ``web_search`` tool is served by pretending to
search: a ``web_search_call`` item comes before the answer. Errors are OpenAI's JSON.

By default it keeps no response: each says ``store: false``, and a ``previous_response_id``
is refused (``previous_response_not_found``). Given where to keep them (the simulator's
``keep_responses``), each answer with ``store`` true (the default) is kept once answered
whole, and a request naming it continues its conversation (its tokens count in the prompt)
until the simulator forgets it (``Simulator.forget_responses``, as an upstream's copy
expires or is deleted).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from modelroute.testing.sim_engine import ContextOverflow, SimRequest, estimate_prompt_tokens
from modelroute.testing.sim_responses_rules import check_request
from modelroute.testing.sim_wire import BadRequest, Exchange, WireError, optional_bool, sse
from modelroute.testing.sim_wire_openai import OpenAIWire

# Request fields the response object repeats, with the API's defaults.
_ECHOED: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "max_tool_calls": None,
    "metadata": {},
    "parallel_tool_calls": True,
    "previous_response_id": None,
    "service_tier": "default",
    "temperature": 1.0,
    "tool_choice": "auto",
    "tools": [],
    "top_logprobs": 0,
    "top_p": 1.0,
    "truncation": "disabled",
    "user": None,
}


class ResponsesWire(OpenAIWire):
    """``POST /v1/responses``: OpenAI's authentication and errors, the Responses shapes."""

    name = "responses"

    def __init__(self, kept: dict[str, int] | None = None) -> None:
        # the responses kept, by id: the tokens of their conversations; None: none kept
        self.kept = kept

    def parse(self, body: dict[str, Any]) -> SimRequest:
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise BadRequest("Missing required parameter: 'model'.", "model")
        stream = optional_bool(body, "stream")
        asked = check_request(body, stream, self.kept)
        echo = {key: body.get(key, default) for key, default in _ECHOED.items()}
        echo["text"] = {
            "format": {"type": "text"},
            "verbosity": "medium",
            **(body.get("text") or {}),
        }
        echo["reasoning"] = body.get("reasoning") or {"effort": None, "summary": None}
        # whatever was asked, a simulator that keeps no response says so
        echo["store"] = self.kept is not None and body.get("store") is not False
        prompt_tokens = estimate_prompt_tokens(asked.texts, len(asked.texts))
        return SimRequest(
            model=model,
            stream=stream,
            max_tokens=body.get("max_output_tokens"),
            match_text=asked.match_text,
            prompt_tokens=prompt_tokens + asked.previous_tokens,
            tool_names=asked.tool_names,
            after_tool_result=asked.after_tool,
            json_mode=asked.json_mode,
            json_schema=asked.json_schema,
            tools_allowed=asked.tools_allowed,
            echo=echo,
            search=asked.search,
        )

    def authorized(self, headers: Mapping[str, str], api_key: str) -> bool:
        return headers.get("Authorization") == f"Bearer {api_key}"

    # -- complete bodies ------------------------------------------------------------------

    def completion(self, x: Exchange) -> bytes:
        self._keep(x)
        return orjson.dumps(_response(x, _status(x), _output(x, done=True), usage=True))

    def _keep(self, x: Exchange) -> None:
        """An answer given whole, kept when it says it is (``store``)."""
        if self.kept is not None and x.req.echo.get("store"):
            self.kept[f"resp_{x.token}"] = x.req.prompt_tokens + x.reply.completion_tokens

    def malformed_body(self, x: Exchange) -> bytes:
        return f'{{"id": "resp_{x.token}", "object": "response", "output": [{{"ty'.encode()

    # -- streams ---------------------------------------------------------------------------

    def stream_head(self, x: Exchange) -> bytes:
        return _events(x, 0, _head(x))

    def stream_piece(self, x: Exchange, i: int) -> bytes:
        first = len(_head(x))
        item = _answer_item(x, done=False)
        index = _answer_index(x)
        if x.reply.tool is not None:
            event = {
                "type": "response.function_call_arguments.delta",
                "item_id": item["id"],
                "output_index": index,
                "delta": x.reply.tool_pieces[i],
            }
        else:
            event = {
                "type": "response.output_text.delta",
                "item_id": item["id"],
                "output_index": index,
                "content_index": 0,
                "delta": x.reply.tokens[i],
                "logprobs": [],
            }
        return _events(x, first + i, [event])

    def stream_tail(self, x: Exchange) -> bytes:
        first = len(_head(x)) + x.reply.completion_tokens
        self._keep(x)
        return _events(x, first, _tail(x))

    def stream_malformed(self, x: Exchange) -> bytes:
        return sse(
            b'{"type":"response.output_text.delta","item_id":"msg_', "response.output_text.delta"
        )

    def stream_error(self) -> bytes:
        # What the API sends when a stream fails after the 200: an "error" event.
        error = {
            "type": "error",
            "code": "server_error",
            "message": "The server had an error while processing your request. Sorry about that!",
            "param": None,
            "sequence_number": 0,
        }
        return sse(orjson.dumps(error), "error")

    def context_length(self, overflow: ContextOverflow) -> WireError:
        problem = super().context_length(overflow)
        return WireError(problem.status, problem.body.replace(b'"messages"', b'"input"'))


def _events(x: Exchange, first: int, events: list[dict[str, Any]]) -> bytes:
    out = b""
    for n, event in enumerate(events):
        out += sse(orjson.dumps({**event, "sequence_number": first + n}), event["type"])
    return out


def _status(x: Exchange) -> str:
    return "incomplete" if x.reply.finish == "length" else "completed"


def _response(
    x: Exchange, status: str, output: list[dict[str, Any]], *, usage: bool
) -> dict[str, Any]:
    completion = x.reply.completion_tokens
    return {
        "id": f"resp_{x.token}",
        "object": "response",
        "created_at": x.created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        **x.req.echo,
        "model": x.model,
        "output": output,
        "usage": {
            "input_tokens": x.req.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": completion,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": x.req.prompt_tokens + completion,
        }
        if usage
        else None,
    }


def _search_item(x: Exchange, done: bool) -> dict[str, Any]:
    return {
        "type": "web_search_call",
        "id": f"ws_{x.token}",
        "status": "completed" if done else "in_progress",
        "action": {"type": "search", "query": x.req.match_text[:100]},
    }


def _answer_index(x: Exchange) -> int:
    return 1 if x.req.search else 0


def _answer_item(x: Exchange, done: bool) -> dict[str, Any]:
    status = (
        ("incomplete" if x.reply.finish == "length" else "completed") if done else "in_progress"
    )
    tool = x.reply.tool
    if tool is not None:
        return {
            "type": "function_call",
            "id": f"fc_{x.token}",
            "call_id": f"call_{x.token}",
            "name": tool.name,
            "arguments": tool.arguments_json if done else "",
            "status": status,
        }
    content = [_text_part(x)] if done else []
    return {
        "type": "message",
        "id": f"msg_{x.token}",
        "status": status,
        "role": "assistant",
        "content": content,
    }


def _text_part(x: Exchange, text: str | None = None) -> dict[str, Any]:
    full = x.reply.content if text is None else text
    return {"type": "output_text", "text": full, "annotations": [], "logprobs": []}


def _output(x: Exchange, done: bool) -> list[dict[str, Any]]:
    search = [_search_item(x, done=True)] if x.req.search else []
    return [*search, _answer_item(x, done)]


def _head(x: Exchange) -> list[dict[str, Any]]:
    started = _response(x, "in_progress", [], usage=False)
    events: list[dict[str, Any]] = [
        {"type": "response.created", "response": started},
        {"type": "response.in_progress", "response": started},
    ]
    if x.req.search:
        item_id = f"ws_{x.token}"
        events.append(
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": _search_item(x, False),
            }
        )
        for phase in ("in_progress", "searching", "completed"):
            events.append(
                {"type": f"response.web_search_call.{phase}", "output_index": 0, "item_id": item_id}
            )
        events.append(
            {"type": "response.output_item.done", "output_index": 0, "item": _search_item(x, True)}
        )
    index, item = _answer_index(x), _answer_item(x, done=False)
    events.append({"type": "response.output_item.added", "output_index": index, "item": item})
    if x.reply.tool is None:
        events.append(
            {
                "type": "response.content_part.added",
                "item_id": item["id"],
                "output_index": index,
                "content_index": 0,
                "part": _text_part(x, ""),
            }
        )
    return events


def _tail(x: Exchange) -> list[dict[str, Any]]:
    index, item = _answer_index(x), _answer_item(x, done=True)
    events: list[dict[str, Any]] = []
    if x.reply.tool is not None:
        events.append(
            {
                "type": "response.function_call_arguments.done",
                "item_id": item["id"],
                "output_index": index,
                "name": item["name"],
                "arguments": item["arguments"],
            }
        )
    else:
        where = {"item_id": item["id"], "output_index": index, "content_index": 0}
        text = x.reply.content
        events.append({"type": "response.output_text.done", **where, "text": text, "logprobs": []})
        events.append({"type": "response.content_part.done", **where, "part": _text_part(x)})
    events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    status = _status(x)
    final = _response(x, status, _output(x, done=True), usage=True)
    events.append({"type": f"response.{status}", "response": final})
    return events
