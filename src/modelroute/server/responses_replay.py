"""A stored response replayed as its event stream: ``GET /v1/responses/{id}?stream=true``.
Pure.

Events are not stored: the stream is made from the ``response`` object, in the documented
sequence a live stream follows (``responses_reply``): ``response.created``,
``response.in_progress``, then per output item ``response.output_item.added``, its content
(per content part ``response.content_part.added``, the text as one
``response.output_text.delta``, ``response.output_text.done``,
``response.content_part.done``; a refusal's ``response.refusal.delta`` and ``.done``; a
function call's ``response.function_call_arguments.delta`` and ``.done``),
``response.output_item.done``, and last ``response.completed`` (``response.incomplete``
when the output limit cut it). Other items (reasoning, built-in tool calls) are added and
done whole. Events are numbered from 0 (``sequence_number``); ``starting_after=N`` resumes
after event ``N``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from modelroute.server.responses_reply import encode_event, event_logprob, text_part

Event = dict[str, Any]


def replay(response: dict[str, Any], starting_after: int = -1) -> bytes:
    """The events of ``response`` numbered after ``starting_after``, as SSE bytes."""
    return b"".join(
        encode_event(event, number)
        for number, event in enumerate(_events(response))
        if number > starting_after
    )


def _events(response: dict[str, Any]) -> Iterator[Event]:
    started = {
        **response,
        "status": "in_progress",
        "output": [],
        "usage": None,
        "error": None,
        "incomplete_details": None,
    }
    yield {"type": "response.created", "response": started}
    yield {"type": "response.in_progress", "response": started}
    output = response.get("output")
    for index, item in enumerate(output if isinstance(output, list) else ()):
        if isinstance(item, dict):
            yield from _item(index, item)
    status = response.get("status")
    ending = status if status in ("completed", "incomplete", "failed") else "completed"
    yield {"type": f"response.{ending}", "response": response}


def _item(index: int, item: dict[str, Any]) -> Iterator[Event]:
    kind = item.get("type")
    opened = dict(item)
    if "status" in item:
        opened["status"] = "in_progress"
    if kind == "message":
        opened["content"] = []
    elif kind == "function_call":
        opened["arguments"] = ""
    yield {"type": "response.output_item.added", "output_index": index, "item": opened}
    if kind == "message":
        content = item.get("content")
        for part_index, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, dict):
                where = {
                    "item_id": item.get("id"),
                    "output_index": index,
                    "content_index": part_index,
                }
                yield from _part(where, part)
    elif kind == "function_call":
        where = {"item_id": item.get("id"), "output_index": index}
        arguments = str(item.get("arguments") or "")
        if arguments:
            delta = {"type": "response.function_call_arguments.delta", **where}
            yield {**delta, "delta": arguments}
        done = {"type": "response.function_call_arguments.done", **where}
        yield {**done, "name": item.get("name"), "arguments": arguments}
    yield {"type": "response.output_item.done", "output_index": index, "item": item}


def _part(where: dict[str, Any], part: dict[str, Any]) -> Iterator[Event]:
    kind = part.get("type")
    if kind == "output_text":
        empty: dict[str, Any] = text_part("")
    elif kind == "refusal":
        empty = {"type": "refusal", "refusal": ""}
    else:
        empty = part
    yield {"type": "response.content_part.added", **where, "part": empty}
    if kind == "output_text":
        text = str(part.get("text") or "")
        given = part.get("logprobs")
        logprobs = [
            event_logprob(lp)
            for lp in (given if isinstance(given, list) else ())
            if isinstance(lp, dict) and "token" in lp
        ]
        if text:
            delta = {"type": "response.output_text.delta", **where, "delta": text}
            yield {**delta, "logprobs": logprobs}
        done = {"type": "response.output_text.done", **where, "text": text}
        yield {**done, "logprobs": logprobs}
    elif kind == "refusal":
        refusal = str(part.get("refusal") or "")
        if refusal:
            yield {"type": "response.refusal.delta", **where, "delta": refusal}
        yield {"type": "response.refusal.done", **where, "refusal": refusal}
    yield {"type": "response.content_part.done", **where, "part": part}
