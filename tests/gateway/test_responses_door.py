"""``POST /v1/responses`` through the real gateway with the official ``openai`` SDK's
``client.responses.create``, plain and streamed: forwarded as is to an upstream that serves
the Responses API (the simulator's /v1/responses), bridged through Chat Completions (and
through Messages to an Anthropic upstream) otherwise; routed like chat (fallbacks, records,
headers); what the bridge cannot carry is a 400 naming it. Every object and event the door
sends is checked against the SDK's own types."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from modelroute.records.stores.sqlite import SqliteStore

from ..responses_shapes import (
    CALL_SEQUENCE,
    TEXT_SEQUENCE,
    squeezed,
    sse_events,
    valid_response,
)
from .fixtures import sdk_client, sim_config
from .harness import Gateway, gateway
from .native_policy import with_native

RESPONSES_POLICY = with_native(
    """  served:
    strategy: {kind: fixed, models: [native]}
  bridged:
    strategy: {kind: fixed, models: [primary]}
  claude-only:
    strategy: {kind: fixed, models: [claude]}
  mixed:
    strategy: {kind: fixed, models: [primary, native]}
  native-first:
    retries: {max_attempts: 1}
    strategy: {kind: fixed, models: [native]}
    fallbacks: [primary]
"""
)
WEATHER = {
    "type": "function",
    "name": "get_weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
# Which upstream endpoint serves each route, and what it answers.
ROUTES = {
    "served": ("/v1/responses", "secondary answer"),
    "bridged": ("/v1/chat/completions", "primary answer"),
    "claude-only": ("/v1/messages", "claude answer"),
}
LONG = " ".join(f"w{i}" for i in range(40))


def config(**overrides: Any) -> dict[str, Any]:
    weather = {"match": "weather", "tool_call": {"name": "get_weather", "arguments": {"c": 1}}}
    answers = [weather, {"match": "22", "content": "Warm, 22 degrees."}]
    changes: dict[str, Any] = {
        "secondary-sim": {"answers": answers},
        "primary-sim": {"answers": answers},
    }
    for name, more in overrides.items():
        changes[name] = {**changes.get(name, {}), **more}
    return sim_config(**changes)


def upstream(gw: Gateway) -> list[tuple[str, dict[str, Any]]]:
    return [(r.endpoint, r.body) for r in gw.sim.requests()]


async def raw_stream(gw: Gateway, **request: Any) -> tuple[httpx.Response, list[dict[str, Any]]]:
    async with httpx.AsyncClient(base_url=gw.base_url, timeout=10) as http:
        response = await http.post("/responses", json={**request, "stream": True})
    assert response.status_code == 200
    return response, sse_events(response.text)


@pytest.mark.parametrize("route", list(ROUTES))
async def test_plain_responses_native_and_bridged(route: str) -> None:
    path, answer = ROUTES[route]
    async with gateway(RESPONSES_POLICY, config()) as gw:
        client = sdk_client(gw)
        raw = await client.responses.with_raw_response.create(
            model=route, input="hello", instructions="Be brief."
        )
        response = valid_response(json.loads(raw.text))
        assert response.output_text == answer and response.status == "completed"
        assert response.usage is not None and response.usage.output_tokens == 2
        assert raw.headers["x-modelroute-route"] == route
        record = gw.record(raw.headers["x-modelroute-request-id"])
        assert record.endpoint == "responses" and record.status == "ok"
        assert record.usage is not None and record.usage.output_tokens == 2
        assert record.cost_usd is not None and record.cost_usd > 0
        assert [endpoint for endpoint, _ in upstream(gw)] == [path]
        if route != "served":  # bridged: the instructions are the system message
            assert response.id == "resp_" + record.request_id.replace("-", "")
            assert response.instructions == "Be brief."


@pytest.mark.parametrize("route", list(ROUTES))
async def test_streamed_responses_native_and_bridged(route: str) -> None:
    path, answer = ROUTES[route]
    async with gateway(RESPONSES_POLICY, config()) as gw:
        raw, events = await raw_stream(gw, model=route, input="hello")
        assert squeezed([e["type"] for e in events]) == TEXT_SEQUENCE
        deltas = [e["delta"] for e in events if e["type"] == "response.output_text.delta"]
        assert "".join(deltas) == answer
        final = events[-1]["response"]
        assert final["usage"]["output_tokens"] == 2 and final["status"] == "completed"
        record = gw.record(raw.headers["x-modelroute-request-id"])
        assert record.streamed and record.status == "ok" and record.answer == answer
        assert record.usage is not None and record.usage.output_tokens == 2
        # The SDK's own stream helper reads the same stream to the same final response.
        async with sdk_client(gw).responses.stream(model=route, input="hello") as stream:
            seen = [event.type async for event in stream]
            done = await stream.get_final_response()
        assert done.output_text == answer and squeezed(seen) == TEXT_SEQUENCE
        assert {endpoint for endpoint, _ in upstream(gw)} == {path}


@pytest.mark.parametrize("route", ["served", "bridged"])
async def test_a_function_call_loop(route: str) -> None:
    async with gateway(RESPONSES_POLICY, config()) as gw:
        client = sdk_client(gw)
        first = await client.responses.create(model=route, input="weather?", tools=[WEATHER])  # type: ignore[list-item]
        call = first.output[0]
        assert call.type == "function_call" and json.loads(call.arguments) == {"c": 1}
        history: Any = [
            {"role": "user", "content": "weather?"},
            {
                "type": "function_call",
                "call_id": call.call_id,
                "name": call.name,
                "arguments": call.arguments,
            },
            {"type": "function_call_output", "call_id": call.call_id, "output": "22"},
        ]
        second = await client.responses.create(model=route, input=history, tools=[WEATHER])  # type: ignore[list-item]
        assert second.output_text == "Warm, 22 degrees."
        _, events = await raw_stream(gw, model=route, input="weather?", tools=[WEATHER])
        assert squeezed([e["type"] for e in events]) == CALL_SEQUENCE
        if route == "bridged":  # the loop went as Chat Completions messages
            endpoint, body = upstream(gw)[1]
            assert endpoint == "/v1/chat/completions"
            assert [m["role"] for m in body["messages"]] == ["user", "assistant", "tool"]
            assert body["messages"][1]["tool_calls"][0]["id"] == call.call_id


async def test_what_only_the_responses_api_serves_goes_native_or_is_a_400() -> None:
    async with gateway(RESPONSES_POLICY, config()) as gw:
        client = sdk_client(gw)
        search: Any = [{"type": "web_search"}]
        # On a route with both kinds, the planner keeps the model that serves it.
        raw = await client.responses.with_raw_response.create(
            model="mixed", input="hello", tools=search
        )
        served = valid_response(json.loads(raw.text))
        assert [item.type for item in served.output] == ["web_search_call", "message"]
        record = gw.record(raw.headers["x-modelroute-request-id"])
        assert record.final_model == "native"
        assert record.planner_input is not None and record.planner_input.context.needs_responses
        # Without the web search, the same route's first choice serves it, bridged.
        plain = await client.responses.create(model="mixed", input="hello")
        assert plain.output_text == "primary answer"
        # A route with no such model: a 400 that names what cannot be bridged.
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="bridged", input="hello", tools=search)
        body = caught.value.body
        assert isinstance(body, dict) and body["code"] == "not_bridgeable"
        assert body["param"] == "tools[0]" and "web_search" in body["message"]
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="claude-only", input="hello", conversation="c_1")
        assert isinstance(caught.value.body, dict)
        assert caught.value.body["param"] == "conversation"
        # The refused requests reached no upstream: nothing was sent with a part left out.
        assert [e for e, _ in upstream(gw)] == ["/v1/responses", "/v1/chat/completions"]


async def test_the_stored_record_of_a_refused_bridge_says_400_as_the_client_got(
    tmp_path: Path,
) -> None:
    """The status is decided once, before the record is written: the client's 400 and the
    stored record's agree (and a route that is infeasible for another reason stays 422)."""
    search: Any = [{"type": "web_search"}]
    async with gateway(RESPONSES_POLICY, config(), store=SqliteStore(tmp_path / "r.db")) as gw:
        client = sdk_client(gw)
        with pytest.raises(openai.BadRequestError) as plain:
            await client.responses.create(model="bridged", input="hello", tools=search)
        with pytest.raises(openai.BadRequestError) as streamed:
            await client.responses.create(model="bridged", input="hi", tools=search, stream=True)
        with pytest.raises(openai.UnprocessableEntityError) as other:  # bridgeable, too long
            await client.responses.create(model="bridged", input="hi", max_output_tokens=10**9)
    refused = [plain.value, streamed.value]
    assert all(isinstance(e.body, dict) and e.body["code"] == "not_bridgeable" for e in refused)
    store = SqliteStore(tmp_path / "r.db")
    await store.open()
    try:
        for error, status in [*((e, 400) for e in refused), (other.value, 422)]:
            stored = await store.get(error.response.headers["x-modelroute-request-id"])
            assert stored is not None and stored["http_status"] == error.status_code == status
            assert stored["endpoint"] == "responses"
            assert stored["status"] == ("client_error" if status == 400 else "infeasible")
            assert stored["decision"]["rejections"][0]["model"] == "primary"
            if status == 400:
                assert "web_search" in stored["error"] and "tools[0]" in stored["error"]
    finally:
        await store.close()


async def test_native_requests_go_as_sent_and_bridged_ones_translated() -> None:
    request: Any = {
        "input": [
            {"role": "developer", "content": "Answer in JSON."},
            {"role": "user", "content": [{"type": "input_text", "text": "hello json"}]},
        ],
        "instructions": "Be brief.",
        "max_output_tokens": 64,
        "temperature": 0,
        "metadata": {"task": "chat", "tenant": "acme"},
        "text": {"format": {"type": "json_schema", "name": "a", "schema": {"type": "object"}}},
    }
    async with gateway(RESPONSES_POLICY, config()) as gw:
        client = sdk_client(gw)
        native = await client.responses.create(model="served", **request)
        bridged = await client.responses.create(model="bridged", **request)
        assert isinstance(json.loads(native.output_text), dict)
        assert isinstance(json.loads(bridged.output_text), dict)
        (_, sent_native), (_, sent_bridged) = upstream(gw)
        # As the client wrote it, but the model and the metadata routing consumed.
        expected = {**request, "model": "secondary-sim", "stream": False}
        assert sent_native == {**expected, "metadata": {"tenant": "acme"}}
        assert sent_bridged["messages"] == [
            {"role": "system", "content": "Be brief."},
            {"role": "system", "content": "Answer in JSON."},
            {"role": "user", "content": "hello json"},
        ]
        assert sent_bridged["max_completion_tokens"] == 64
        assert sent_bridged["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "a", "schema": {"type": "object"}},
        }
        assert "responses_request" not in sent_bridged and "input" not in sent_bridged


def _token_logprobs(logprobs: Any) -> list[tuple[str, float, int]]:
    return [(lp["token"], lp["logprob"], len(lp["top_logprobs"])) for lp in logprobs]


async def test_bridged_answers_carry_the_logprobs_asked_for_plain_and_streamed() -> None:
    asked: Any = {"include": ["message.output_text.logprobs"], "top_logprobs": 2}
    async with gateway(RESPONSES_POLICY, config()) as gw:
        plain = await sdk_client(gw).responses.create(model="bridged", input="hello", **asked)
        part = plain.output[0].content[0]  # type: ignore[union-attr]
        assert part.type == "output_text" and part.logprobs
        expected = _token_logprobs(lp.model_dump() for lp in part.logprobs)
        assert "".join(t for t, _, _ in expected) == "primary answer"
        assert all(lp < 0 and top == 2 for _, lp, top in expected)
        _, events = await raw_stream(gw, model="bridged", input="hello", **asked)
        deltas = [e for e in events if e["type"] == "response.output_text.delta"]
        # Each delta carries its own tokens' logprobs, in the events' shape (no bytes).
        assert all("".join(lp["token"] for lp in e["logprobs"]) == e["delta"] for e in deltas)
        assert all("bytes" not in lp for e in deltas for lp in e["logprobs"])
        streamed = [lp for e in deltas for lp in e["logprobs"]]
        assert _token_logprobs(streamed) == expected
        (done,) = [e for e in events if e["type"] == "response.output_text.done"]
        assert _token_logprobs(done["logprobs"]) == expected
        final = events[-1]["response"]["output"][0]["content"][0]
        assert _token_logprobs(final["logprobs"]) == expected
        assert all(lp["bytes"] == list(lp["token"].encode()) for lp in final["logprobs"])
        # The SDK's stream helper reads them into its final response too.
        async with sdk_client(gw).responses.stream(model="bridged", input="hi", **asked) as s:
            read = await s.get_final_response()
        text = read.output[0].content[0]  # type: ignore[union-attr]
        assert text.type == "output_text" and text.logprobs
        assert _token_logprobs(lp.model_dump() for lp in text.logprobs) == expected
        # A cascade's answer accepted early is replayed as a stream: with the logprobs asked
        # for, and none when not asked (though the router asked on its own account, for the
        # confidence that accepted it).
        _, events = await raw_stream(gw, model="triage", input="hello", **asked)
        deltas = [e for e in events if e["type"] == "response.output_text.delta"]
        assert _token_logprobs(lp for e in deltas for lp in e["logprobs"]) == expected
        for route in ("bridged", "triage"):
            _, events = await raw_stream(gw, model=route, input="hello")
            texts = [e for e in events if e["type"].startswith("response.output_text.")]
            assert texts and all(e["logprobs"] == [] for e in texts)
            assert events[-1]["response"]["output"][0]["content"][0]["logprobs"] == []
        sent = [body for _, body in upstream(gw)]
        assert [b.get("logprobs") for b in sent] == [True, True, True, True, None, True]


async def test_a_chat_stream_replaying_a_cascade_answer_keeps_the_logprobs_asked_for() -> None:
    async with gateway(RESPONSES_POLICY, config()) as gw:
        stream = await sdk_client(gw).chat.completions.create(
            model="triage",
            messages=[{"role": "user", "content": "hello"}],
            logprobs=True,
            top_logprobs=2,
            stream=True,
        )
        chunks = [chunk async for chunk in stream]
        tokens = [
            (lp.token, lp.logprob, len(lp.top_logprobs))
            for c in chunks
            if c.choices and c.choices[0].logprobs and c.choices[0].logprobs.content
            for lp in c.choices[0].logprobs.content
        ]
        assert "".join(t for t, _, _ in tokens) == "primary answer"
        assert all(lp < 0 and top == 2 for _, lp, top in tokens)
        assert gw.records()[-1].escalations == 0


async def test_a_failing_native_upstream_falls_back_to_the_bridge() -> None:
    failing = {"secondary-sim": {"script": ["server_error", "server_error"]}}
    async with gateway(RESPONSES_POLICY, config(**failing)) as gw:
        raw = await sdk_client(gw).responses.with_raw_response.create(
            model="native-first", input="hello"
        )
        assert valid_response(json.loads(raw.text)).output_text == "primary answer"
        record = gw.record(raw.headers["x-modelroute-request-id"])
        assert [(a.model, a.outcome) for a in record.attempts] == [
            ("native", "failed"),
            ("primary", "ok"),
        ]
        _, events = await raw_stream(gw, model="native-first", input="hello")
        assert squeezed([e["type"] for e in events]) == TEXT_SEQUENCE
        assert events[-1]["response"]["output"][0]["content"][0]["text"] == "primary answer"


@pytest.mark.parametrize(
    ("route", "model"), [("served", "secondary-sim"), ("bridged", "primary-sim")]
)
async def test_a_stream_broken_after_its_first_byte_ends_with_response_failed(
    route: str, model: str
) -> None:
    broken = {model: {"script": ["stream_error"], "default_answer": LONG}}
    async with gateway(RESPONSES_POLICY, config(**broken)) as gw:
        raw, events = await raw_stream(gw, model=route, input="hello")  # numbered, valid
        types = [e["type"] for e in events]
        assert types[:2] == ["response.created", "response.in_progress"]
        assert types[-2:] == ["error", "response.failed"]
        assert "response.completed" not in types
        failed = events[-1]["response"]
        assert failed["status"] == "failed" and failed["error"]["code"] == "server_error"
        received = "".join(e["delta"] for e in events if e["type"].endswith("text.delta"))
        assert received and LONG.startswith(received) and received != LONG
        record = gw.record(raw.headers["x-modelroute-request-id"])
        assert record.status == "stream_error" and record.answer == received


async def test_bad_requests_are_refused_in_openai_format() -> None:
    async with gateway(RESPONSES_POLICY, config()) as gw:
        client = sdk_client(gw)
        bad: list[tuple[dict[str, Any], str]] = [
            ({"input": 3}, "input"),
            ({"input": [{"role": "robot", "content": "x"}]}, "input[0].role"),
            ({"input": "x", "max_output_tokens": 2.5}, "max_output_tokens"),
            ({"input": [{"type": "function_call_output", "output": "1"}]}, "input[0].call_id"),
        ]
        for fields, param in bad:
            with pytest.raises(openai.BadRequestError) as caught:
                await client.responses.create(model="bridged", **fields)
            assert isinstance(caught.value.body, dict) and caught.value.body["param"] == param
        with pytest.raises(openai.NotFoundError):
            await client.responses.create(model="no-such-route", input="x")
        # What the Responses API itself refuses comes back as its 400 from a native upstream.
        with pytest.raises(openai.BadRequestError) as caught:
            await client.responses.create(model="served", input="x", max_output_tokens=5)
        assert "max_output_tokens" in caught.value.message
        assert {r.endpoint for r in gw.records()} == {"responses"}


async def test_the_openapi_document_describes_the_door() -> None:
    async with gateway(RESPONSES_POLICY, config()) as gw:
        _, events = await raw_stream(gw, model="served", input="hi")
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as http:
            spec = (await http.get("/openapi.json")).json()
            answer = await http.post("/v1/responses", json={"model": "bridged", "input": "hi"})
    operation = spec["paths"]["/v1/responses"]["post"]
    assert operation["operationId"] == "createResponse"
    schemas = spec["components"]["schemas"]
    assert set(schemas["Response"]["required"]) <= set(answer.json())
    event = schemas["ResponseStreamEvent"]
    assert event["required"] == ["event", "data"]
    data = event["properties"]["data"]["contentSchema"]
    assert all(set(data["required"]) <= set(e) for e in events)
    assert schemas["ResponsesRequest"]["required"] == ["model", "input"]
    assert set(operation["responses"]) >= {"200", "400", "404", "422", "502"}
