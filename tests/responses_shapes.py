"""The Responses API's shapes as the installed ``openai`` SDK declares them: each object and
event a test receives is validated against its model (every required field, every type)."""

from __future__ import annotations

import json
import typing
from typing import Any

from openai.types.responses import Response, ResponseStreamEvent
from pydantic import BaseModel

# ResponseStreamEvent is Annotated[Union[...], discriminator]: one model per event type.
_UNION = typing.get_args(ResponseStreamEvent)[0]
EVENT_MODELS: dict[str, type[BaseModel]] = {
    typing.get_args(model.model_fields["type"].annotation)[0]: model
    for model in typing.get_args(_UNION)
}


def valid_event(event: dict[str, Any]) -> BaseModel:
    """``event`` (as sent) validated against the SDK's model for its type."""
    return EVENT_MODELS[event["type"]].model_validate(event)


def valid_response(data: dict[str, Any]) -> Response:
    return Response.model_validate(data)


def sse_events(text: str) -> list[dict[str, Any]]:
    """A Responses stream as sent: each event named by its type, numbered in order, and
    valid for the SDK's model of that type."""
    events = []
    for block in text.strip().split("\n\n"):
        name, data = block.split("\n", 1)
        event = json.loads(data.removeprefix("data: "))
        assert name == "event: " + event["type"]
        valid_event(event)
        events.append(event)
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    return events


def squeezed(types: list[str]) -> list[str]:
    """Event types with each run of repeats (deltas) counted once."""
    return [t for i, t in enumerate(types) if i == 0 or t != types[i - 1]]


TEXT_SEQUENCE = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.content_part.done",
    "response.output_item.done",
    "response.completed",
]
CALL_SEQUENCE = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.output_item.done",
    "response.completed",
]
