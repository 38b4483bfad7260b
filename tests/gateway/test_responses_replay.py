"""A stored response replayed as its event stream through the real gateway, read with the
official ``openai`` SDK (``client.responses.retrieve(id, stream=True)``): the documented
sequence a live stream follows, numbered from 0, resumed after ``starting_after``, for a
bridged text answer, a bridged function call and a natively served answer."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from ..responses_shapes import sse_events, valid_response
from .fixtures import sdk_client, sim_config
from .harness import gateway
from .test_responses_stored import FIRST, FRANCE, POLICY

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def collapsed(types: list[str]) -> list[str]:
    """Event types with each run of deltas counted once (a live stream sends a delta per
    token, a replay the whole text in one)."""
    out: list[str] = []
    for kind in types:
        if not (kind.endswith(".delta") and out and out[-1] == kind):
            out.append(kind)
    return out


async def replayed(client: openai.AsyncOpenAI, response_id: str, **query: Any) -> list[Any]:
    stream = await client.responses.retrieve(response_id, stream=True, **query)
    return [event async for event in stream]


@pytest.mark.parametrize("route", ["bridged", "served"])
async def test_a_stored_response_replays_as_the_live_stream_did(route: str) -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw)
        async with client.responses.stream(model=route, input=FRANCE) as live:
            live_types = [event.type async for event in live]
            done = await live.get_final_response()
        events = await replayed(client, done.id)
        assert [e.sequence_number for e in events] == list(range(len(events)))
        assert collapsed([e.type for e in events]) == collapsed(live_types)
        assert events[0].type == "response.created"
        assert events[0].response.status == "in_progress" and events[0].response.output == []
        text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
        assert text == FIRST[route]
        assert events[-1].type == "response.completed"
        stored = await client.responses.retrieve(done.id)
        assert events[-1].response.model_dump() == stored.model_dump()
        # resumed after any event: exactly the events after it
        for after in (0, 3, len(events) - 2):
            rest = await replayed(client, done.id, starting_after=after)
            assert [e.model_dump() for e in rest] == [e.model_dump() for e in events[after + 1 :]]
        assert await replayed(client, done.id, starting_after=len(events) - 1) == []


async def test_a_function_call_replays_its_arguments() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw)
        created = await client.responses.create(
            model="bridged", input="What is the weather in Paris?", tools=[WEATHER_TOOL]
        )
        call = created.output[0]
        assert call.type == "function_call"
        events = await replayed(client, created.id)
        assert [e.type for e in events] == [
            "response.created", "response.in_progress", "response.output_item.added",
            "response.function_call_arguments.delta", "response.function_call_arguments.done",
            "response.output_item.done", "response.completed",
        ]  # fmt: skip
        added, delta, args_done, item_done = events[2:6]
        assert added.item.status == "in_progress" and added.item.arguments == ""  # type: ignore[union-attr]
        assert delta.delta == args_done.arguments == call.arguments  # type: ignore[union-attr]
        assert args_done.name == "get_weather"  # type: ignore[union-attr]
        assert item_done.item.model_dump() == call.model_dump()  # type: ignore[union-attr]


async def test_the_replay_on_the_wire_and_its_refusals() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        created = await sdk_client(gw).responses.create(model="bridged", input=FRANCE)
        async with httpx.AsyncClient(base_url=gw.base_url, timeout=10) as http:
            raw = await http.get(f"/responses/{created.id}", params={"stream": "true"})
            assert raw.status_code == 200
            assert raw.headers["content-type"].startswith("text/event-stream")
            events = sse_events(raw.text)  # named, numbered from 0, each the SDK's shape
            valid_response(events[-1]["response"])
            whole = await http.get(f"/responses/{created.id}", params={"stream": "false"})
            assert whole.json() == events[-1]["response"]
            for bad in ("-1", "x", "1.5"):
                refused = await http.get(
                    f"/responses/{created.id}", params={"stream": "true", "starting_after": bad}
                )
                assert refused.status_code == 400
                assert refused.json()["error"]["param"] == "starting_after"
            missing = await http.get("/responses/resp_unknown", params={"stream": "true"})
            assert missing.status_code == 404
