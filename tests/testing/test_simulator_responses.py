"""The simulator's ``POST /v1/responses``: the Responses API's objects and documented stream
events (checked against the ``openai`` SDK's own types), a faked web search, and the real
API's refusals. Read with the official ``openai`` SDK."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

from modelroute.testing import Simulator

from ..responses_shapes import CALL_SEQUENCE, TEXT_SEQUENCE, squeezed, sse_events, valid_response
from .simulator_support import CONFIG, FRANCE, WEATHER_ARGS

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


@pytest.fixture
async def client(oai: openai.AsyncOpenAI) -> openai.AsyncOpenAI:
    return oai


async def stream_of(http: httpx.AsyncClient, **request: Any) -> list[dict[str, Any]]:
    response = await http.post("/v1/responses", json={**request, "stream": True})
    assert response.status_code == 200
    return sse_events(response.text)


async def test_a_plain_response_is_a_valid_response_object(client: openai.AsyncOpenAI) -> None:
    raw = await client.responses.with_raw_response.create(
        model="small", input="What is the capital of France?", instructions="Be brief."
    )
    data = json.loads(raw.text)
    response = valid_response(data)  # every required field, the right types
    assert response.output_text == FRANCE
    assert response.status == "completed" and response.object == "response"
    assert response.instructions == "Be brief."
    assert response.model == "small-2024-08-06"
    assert response.usage is not None
    assert response.usage.output_tokens == len(FRANCE.split())
    assert response.usage.total_tokens == response.usage.input_tokens + len(FRANCE.split())


async def test_a_stream_has_the_documented_sequence(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    events = await stream_of(http, model="small", input="What is the capital of France?")
    assert squeezed([e["type"] for e in events]) == TEXT_SEQUENCE
    deltas = "".join(e["delta"] for e in events if e["type"] == "response.output_text.delta")
    assert deltas == FRANCE
    assert events[-1]["response"]["output"][0]["content"][0]["text"] == FRANCE
    assert events[-1]["response"]["usage"]["output_tokens"] == len(FRANCE.split())


async def test_function_calls_plain_and_streamed(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    response = await client.responses.create(model="small", input="weather?", tools=[WEATHER])
    call = response.output[0]
    assert call.type == "function_call"
    assert json.loads(call.arguments) == WEATHER_ARGS
    events = await stream_of(http, model="small", input="weather?", tools=[WEATHER])
    assert squeezed([e["type"] for e in events]) == CALL_SEQUENCE
    pieces = [e["delta"] for e in events if e["type"].endswith("arguments.delta")]
    assert json.loads("".join(pieces)) == WEATHER_ARGS
    # The call's output sent back: the model answers instead of calling again.
    again = await client.responses.create(
        model="small",
        tools=[WEATHER],
        input=[
            {"role": "user", "content": "weather?"},
            {"type": "function_call", "call_id": "c1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": "22"},
        ],
    )
    assert again.output_text == "It is 22 degrees in Paris."


async def test_web_search_is_faked_before_the_answer(
    client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    response = await client.responses.create(
        model="small", input="capital of France?", tools=[{"type": "web_search"}]
    )
    assert [item.type for item in response.output] == ["web_search_call", "message"]
    events = await stream_of(
        http, model="small", input="capital of France?", tools=[{"type": "web_search"}]
    )
    types = [e["type"] for e in events]
    assert types.index("response.web_search_call.completed") < types.index(
        "response.output_text.delta"
    )


async def test_the_output_limit_makes_an_incomplete_response(
    sim: Simulator, client: openai.AsyncOpenAI, http: httpx.AsyncClient
) -> None:
    sim.update_model("small", default_answer=" ".join(["word"] * 30))
    response = await client.responses.create(model="small", input="hi", max_output_tokens=16)
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert response.usage is not None and response.usage.output_tokens == 16
    events = await stream_of(http, model="small", input="hi", max_output_tokens=16)
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["output"][0]["status"] == "incomplete"


@pytest.mark.parametrize(
    ("request_fields", "param", "words"),
    [
        ({"extra_body": {"stop": ["x"]}}, "stop", "Unknown parameter: 'stop'"),
        ({"max_output_tokens": 5}, "max_output_tokens", "Expected a value >= 16"),
        ({"previous_response_id": "resp_1"}, "previous_response_id", "not found"),
        ({"temperature": 3}, "temperature", "between 0 and 2"),
        ({"tools": [{"type": "nope"}]}, "tools[0].type", "Invalid value: 'nope'"),
        ({"tool_choice": {"type": "function", "name": "f"}}, "tool_choice", "only allowed"),
        ({"text": {"format": {"type": "json_object"}}}, "input", "the word 'json'"),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name", ""),
        ({"input": [{"type": "function_call_output", "call_id": "c9", "output": "1"}]}, "input",
         "No tool call found"),
        ({"input": [{"role": "robot", "content": "hi"}]}, "input[0].role", "Invalid value"),
        ({"input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]},
         "input[0].content[0]", "'input_text'"),
    ],
)  # fmt: skip
async def test_what_the_api_refuses_is_refused(
    client: openai.AsyncOpenAI, request_fields: dict[str, Any], param: str, words: str
) -> None:
    fields = {"input": "hello", **request_fields}
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(model="small", **fields)
    body = caught.value.body
    assert isinstance(body, dict)
    assert body["type"] == "invalid_request_error" and body["param"] == param
    assert words in body["message"]


async def test_an_unkept_previous_response_is_previous_response_not_found(
    client: openai.AsyncOpenAI,
) -> None:
    response = await client.responses.create(model="small", input="hello", store=True)
    assert response.store is False  # it keeps nothing, whatever was asked
    with pytest.raises(openai.BadRequestError) as caught:
        await client.responses.create(
            model="small", input="again", previous_response_id=response.id
        )
    assert caught.value.code == "previous_response_not_found"


async def test_kept_responses_continue_until_forgotten() -> None:
    async with (
        Simulator({**CONFIG, "keep_responses": True}) as sim,
        openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test") as client,
    ):
        first = await client.responses.create(model="small", input="hello")
        assert first.store is True and first.usage is not None
        second = await client.responses.create(
            model="small", input="hello", previous_response_id=first.id
        )
        assert second.previous_response_id == first.id and second.usage is not None
        # the previous conversation counts in the prompt
        assert second.usage.input_tokens == first.usage.total_tokens + first.usage.input_tokens
        async with client.responses.stream(
            model="small", input="hi", previous_response_id=second.id
        ) as stream:
            streamed = await stream.get_final_response()
        unstored = await client.responses.create(model="small", input="hi", store=False)
        assert unstored.store is False
        sim.forget_responses()
        for gone in (first.id, streamed.id, unstored.id):
            with pytest.raises(openai.BadRequestError) as caught:
                await client.responses.create(
                    model="small", input="again", previous_response_id=gone
                )
            assert caught.value.code == "previous_response_not_found"
            assert caught.value.param == "previous_response_id"
