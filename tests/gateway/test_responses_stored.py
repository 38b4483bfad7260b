"""Stored responses through the real gateway with the official ``openai`` SDK:
``client.responses.retrieve``, ``delete`` and ``input_items.list``; a conversation carried by
``previous_response_id`` through the bridge and to an upstream that serves the Responses API
(whose second turn's upstream request carries the first turn), and to an upstream that keeps
its own responses (sent the id when it answered the turn before); ``store: false``; a streamed
response retrieved once complete; unknown ids; and the store shared through Redis by two
gateways."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import openai
import pytest
import redis
from openai.types.responses import ResponseItemList

from modelroute.cache import MemoryCache
from modelroute.cache.redis_cache import RedisCache
from modelroute.server.responses_store import ResponseStore
from modelroute.state.redis_state import connect

from ..responses_shapes import valid_response
from ..state.conftest import REDIS_URL
from .fixtures import sdk_client, sim_config
from .harness import Gateway, gateway
from .keeping_upstream import KeepingUpstream
from .native_policy import with_native

POLICY = with_native(
    """  served:
    strategy: {kind: fixed, models: [native]}
  bridged:
    strategy: {kind: fixed, models: [primary]}
"""
)
FRANCE = "What is the capital of France?"
# What each route's upstream answers the first turn (its default answer otherwise).
FIRST = {"served": "secondary answer", "bridged": "Paris"}


def upstream_bodies(gw: Gateway) -> list[dict[str, Any]]:
    return [r.body for r in gw.sim.requests() if r.endpoint != "/v1/models"]


def conversation_sent(route: str, body: dict[str, Any]) -> list[tuple[str, str]]:
    """(role, text) of what an upstream request carried: the messages of a Chat Completions
    request, the input items of a Responses request."""
    if route == "bridged":
        return [(m["role"], m["content"]) for m in body["messages"]]
    assert "previous_response_id" not in body  # the upstream is sent the whole conversation
    sent = []
    for item in body["input"]:
        content = item["content"]
        text = content if isinstance(content, str) else "".join(p["text"] for p in content)
        sent.append((item["role"], text))
    return sent


async def test_retrieve_list_input_items_and_delete() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw)
        created = await client.responses.create(
            model="bridged", input=FRANCE, instructions="Be brief.", metadata={"t": "1"}
        )
        assert created.output_text == "Paris"
        got = await client.responses.retrieve(created.id)
        assert got.model_dump() == created.model_dump()  # the object as it was sent
        items = await client.responses.input_items.list(created.id)
        assert len(items.data) == 1 and items.has_more is False
        item = items.data[0]
        assert item.type == "message" and item.role == "user"
        assert item.content[0].type == "input_text" and item.content[0].text == FRANCE
        assert items.first_id == items.last_id == item.id
        # OpenAI's shapes, as sent
        async with httpx.AsyncClient(base_url=gw.base_url, timeout=10) as http:
            raw = await http.get(f"/responses/{created.id}/input_items")
            ResponseItemList.model_validate(raw.json())
            assert raw.json()["object"] == "list"
            valid_response((await http.get(f"/responses/{created.id}")).json())
            deleted = await http.delete(f"/responses/{created.id}")
            assert deleted.status_code == 200
            assert deleted.json() == {"id": created.id, "object": "response", "deleted": True}
        for gone in (client.responses.retrieve, client.responses.delete):
            with pytest.raises(openai.NotFoundError) as caught:
                await gone(created.id)
            assert caught.value.status_code == 404
            assert created.id in caught.value.body["message"]  # type: ignore[index]


@pytest.mark.parametrize("route", ["bridged", "served"])
async def test_previous_response_id_carries_the_conversation(route: str) -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw)
        first = await client.responses.create(model=route, input=FRANCE, instructions="Terse.")
        second = await client.responses.create(
            model=route, input="And of Spain?", previous_response_id=first.id
        )
        third = await client.responses.create(
            model=route,
            input=[{"role": "user", "content": "And of Italy?"}],
            previous_response_id=second.id,
        )
        assert second.status == third.status == "completed"
        if route == "bridged":  # the door's own object says what the client sent
            assert second.previous_response_id == first.id
            assert third.previous_response_id == second.id
        bodies = upstream_bodies(gw)
        assert len(bodies) == 3
        answer = FIRST[route]
        later = "primary answer" if route == "bridged" else "secondary answer"
        # instructions hold for their own turn only, as in the Responses API
        assert conversation_sent(route, bodies[1]) == [
            ("user", FRANCE), ("assistant", answer), ("user", "And of Spain?"),
        ]  # fmt: skip
        assert conversation_sent(route, bodies[2]) == [
            ("user", FRANCE), ("assistant", answer), ("user", "And of Spain?"),
            ("assistant", later), ("user", "And of Italy?"),
        ]  # fmt: skip
        # the input items: the whole conversation the response answered, newest first
        items = await client.responses.input_items.list(third.id)
        texts = [i.content[0].text for i in items.data if i.type == "message"]  # type: ignore[union-attr]
        assert texts == ["And of Italy?", later, "And of Spain?", answer, FRANCE]
        oldest = await client.responses.input_items.list(third.id, order="asc", limit=2)
        assert [i.id for i in oldest.data] == [i.id for i in items.data][::-1][:2]
        assert oldest.has_more is True
        rest = await client.responses.input_items.list(third.id, order="asc", after=oldest.last_id)
        assert len(rest.data) == 3 and rest.has_more is False


async def test_store_false_keeps_nothing_and_an_unknown_previous_id_is_a_400() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw)
        unstored = await client.responses.create(model="bridged", input=FRANCE, store=False)
        assert unstored.output_text == "Paris"
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(unstored.id)
        for missing in (unstored.id, "resp_nothing_here"):
            with pytest.raises(openai.BadRequestError) as caught:
                await client.responses.with_raw_response.create(
                    model="bridged", input="again", previous_response_id=missing
                )
            body: Any = caught.value.body
            assert body["code"] == "previous_response_not_found"
            assert body["param"] == "previous_response_id" and missing in body["message"]
            record = gw.record(caught.value.response.headers["x-modelroute-request-id"])
            assert record.http_status == 400 and record.endpoint == "responses"
        assert len(upstream_bodies(gw)) == 1  # the refused turns reached no upstream


@pytest.mark.parametrize("route", ["bridged", "served"])
async def test_a_streamed_response_is_stored_once_complete(route: str) -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw)
        async with client.responses.stream(model=route, input=FRANCE) as stream:
            done = await stream.get_final_response()
        got = await client.responses.retrieve(done.id)
        assert got.output_text == done.output_text == FIRST[route]
        assert got.status == "completed" and got.usage is not None
        items = await client.responses.input_items.list(done.id)
        assert [i.content[0].text for i in items.data] == [FRANCE]  # type: ignore[union-attr]
        follow = await client.responses.create(
            model=route, input="And of Spain?", previous_response_id=done.id
        )
        assert follow.status == "completed"
        assert conversation_sent(route, upstream_bodies(gw)[-1])[:2] == [
            ("user", FRANCE), ("assistant", FIRST[route]),
        ]  # fmt: skip


async def test_unknown_ids_bad_pages_and_methods_in_openai_format() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw)
        with pytest.raises(openai.NotFoundError) as caught:
            await client.responses.input_items.list("resp_unknown")
        assert caught.value.body["type"] == "invalid_request_error"  # type: ignore[index]
        created = await client.responses.create(model="bridged", input=FRANCE)
        async with httpx.AsyncClient(base_url=gw.base_url, timeout=10) as http:
            for query, param in (("limit=0", "limit"), ("order=up", "order"), ("after=x", "after")):
                bad = await http.get(f"/responses/{created.id}/input_items?{query}")
                assert bad.status_code == 400 and bad.json()["error"]["param"] == param
            wrong = await http.post(f"/responses/{created.id}", json={})
            assert wrong.status_code == 405 and wrong.headers["allow"] == "GET, DELETE"
            assert wrong.json()["error"]["code"] == "method_not_allowed"


def redis_store(redis_prefix: str) -> ResponseStore:
    return ResponseStore(RedisCache(connect(REDIS_URL), redis_prefix, namespace="responses"), 600)


async def test_two_gateways_share_stored_responses_through_redis(redis_prefix: str) -> None:
    async with (
        gateway(POLICY, sim_config(), responses=redis_store(redis_prefix)) as a,
        gateway(POLICY, sim_config(), responses=redis_store(redis_prefix)) as b,
    ):
        on_a, on_b = sdk_client(a), sdk_client(b)
        first = await on_a.responses.create(model="bridged", input=FRANCE)
        assert (await on_b.responses.retrieve(first.id)).output_text == "Paris"
        second = await on_b.responses.create(
            model="bridged", input="And of Spain?", previous_response_id=first.id
        )
        assert conversation_sent("bridged", upstream_bodies(b)[0])[:2] == [
            ("user", FRANCE), ("assistant", "Paris"),
        ]  # fmt: skip
        check = redis.Redis.from_url(REDIS_URL)
        try:
            assert 0 < check.pttl(f"{redis_prefix}responses:{second.id}") <= 600_000
        finally:
            check.close()
        await on_b.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            await on_a.responses.retrieve(first.id)


KEEPER = """  keeper:
    provider: openai
    base_url: "{keeper}"
    model_id: keeper-1
    allow_floating: true
    prices: {input: 3.0, output: 6.0}
    context_window: 64000
    capabilities: [responses]
    latency: {p50_ms: 30, p95_ms: 80}
"""
KEPT_POLICY = with_native(
    """  kept:
    strategy: {kind: fixed, models: [keeper]}
  bridged:
    strategy: {kind: fixed, models: [primary]}
"""
).replace("routes:\n", KEEPER + "routes:\n", 1)


async def test_the_upstream_that_keeps_the_previous_response_is_sent_its_id() -> None:
    """Turn 1 answered by an upstream that keeps its responses: turn 2 on the same model
    names it (the upstream continues its own conversation); on any other model, and after a
    bridged turn, the whole conversation goes instead."""
    async with KeepingUpstream().running() as keeper:
        policy = KEPT_POLICY.replace("{keeper}", keeper.url)
        async with gateway(policy, sim_config()) as gw:
            client = sdk_client(gw)
            first = await client.responses.create(model="kept", input=FRANCE)
            assert first.output_text == "turn 1" and first.id == "resp_kept1"
            second = await client.responses.create(
                model="kept", input="And of Spain?", previous_response_id=first.id
            )
            assert keeper.requests[1]["previous_response_id"] == first.id
            assert keeper.requests[1]["input"] == "And of Spain?"  # as the client wrote it
            assert second.output_text == "turn 2"  # the upstream resolved the id itself
            items = await client.responses.input_items.list(second.id, order="asc")
            assert [i.role for i in items.data] == ["user", "assistant", "user"]  # type: ignore[union-attr]
            # the same conversation on a bridged model: sent whole
            await client.responses.create(
                model="bridged", input="And of Italy?", previous_response_id=second.id
            )
            assert conversation_sent("bridged", upstream_bodies(gw)[-1]) == [
                ("user", FRANCE), ("assistant", "turn 1"), ("user", "And of Spain?"),
                ("assistant", "turn 2"), ("user", "And of Italy?"),
            ]  # fmt: skip
            # a bridged turn, then the keeping upstream: it never saw that turn, so it gets
            # the whole conversation and no id
            bridged = await client.responses.create(model="bridged", input=FRANCE)
            after = await client.responses.create(
                model="kept", input="And of Spain?", previous_response_id=bridged.id
            )
            assert "previous_response_id" not in keeper.requests[-1]
            assert conversation_sent("served", keeper.requests[-1]) == [
                ("user", FRANCE), ("assistant", "Paris"), ("user", "And of Spain?"),
            ]  # fmt: skip
            assert after.output_text == "turn 2"
            # an answer the upstream did not keep (store: false) is not named to it either
            unkept = await client.responses.create(model="kept", input=FRANCE, store=False)
            with pytest.raises(openai.BadRequestError) as caught:
                await client.responses.create(
                    model="kept", input="again", previous_response_id=unkept.id
                )
            assert caught.value.code == "previous_response_not_found"


async def test_an_unreachable_redis_is_a_503_not_a_missing_response() -> None:
    dead = RedisCache(
        connect("redis://127.0.0.1:1/0"), "x:", namespace="responses", fail_open=False
    )
    async with gateway(POLICY, sim_config(), responses=ResponseStore(dead)) as gw:
        client = sdk_client(gw)
        answered = await client.responses.create(model="bridged", input=FRANCE)
        assert answered.output_text == "Paris"  # answered; only the storing failed
        for read in (client.responses.retrieve, client.responses.input_items.list):
            with pytest.raises(openai.InternalServerError) as caught:
                await read(answered.id)
            assert caught.value.status_code == 503
            assert caught.value.body["code"] == "store_unavailable"  # type: ignore[index]
        with pytest.raises(openai.InternalServerError) as refused:
            await client.responses.with_raw_response.create(
                model="bridged", input="again", previous_response_id=answered.id
            )
        assert refused.value.status_code == 503
        record = gw.record(refused.value.response.headers["x-modelroute-request-id"])
        assert record.http_status == 503 and record.status == "failed"
        assert len(upstream_bodies(gw)) == 1


async def test_the_openapi_document_describes_the_stored_responses() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        created = await sdk_client(gw).responses.create(model="bridged", input=FRANCE)
        async with httpx.AsyncClient(base_url=gw.url, timeout=10) as http:
            spec = (await http.get("/openapi.json")).json()
            items = (await http.get(f"/v1/responses/{created.id}/input_items")).json()
            deleted = (await http.delete(f"/v1/responses/{created.id}")).json()
    schemas = spec["components"]["schemas"]
    for body, name in ((items, "ResponseItemList"), (deleted, "ResponseDeleted")):
        schema = schemas[name]
        assert set(schema["required"]) <= set(body) and set(body) <= set(schema["properties"])
    assert set(items["data"][0]) >= set(schemas["ResponseItemList"]["properties"]["data"][
        "items"]["required"])  # fmt: skip
    one = spec["paths"]["/v1/responses/{response_id}"]
    assert (one["get"]["operationId"], one["delete"]["operationId"]) == (
        "getResponse", "deleteResponse",
    )  # fmt: skip
    replay = {p["name"] for p in one["get"]["parameters"]}
    assert replay == {"response_id", "stream", "starting_after"}
    assert set(one["get"]["responses"]["200"]["content"]) == {
        "application/json", "text/event-stream",
    }  # fmt: skip
    listing = spec["paths"]["/v1/responses/{response_id}/input_items"]["get"]
    assert {p["name"] for p in listing["parameters"]} == {"response_id", "after", "limit", "order"}
    assert set(listing["responses"]) == {"200", "400", "404", "503"}


class SlowEntries(MemoryCache):
    """Entries that take a while to be written."""

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        await asyncio.sleep(0.2)
        await super().put(key, value, ttl_s)


@pytest.mark.parametrize("route", ["bridged", "served"])
async def test_a_response_is_stored_before_the_client_can_read_it_whole(route: str) -> None:
    """A client may name a response as soon as it has read it: the store has it by then,
    even a slow one (as a shared store over the network is)."""
    store = ResponseStore(SlowEntries())
    request = {"model": route, "input": FRANCE, "stream": True}
    async with (
        gateway(POLICY, sim_config(), responses=store) as gw,
        httpx.AsyncClient(base_url=gw.base_url, timeout=10) as http,
    ):
        async with http.stream("POST", "/responses", json=request) as streamed:
            async for line in streamed.aiter_lines():
                if line.startswith("data: ") and '"response.completed"' in line:
                    done = json.loads(line.removeprefix("data: "))["response"]
                    kept = await store.get(done["id"], None)
                    assert kept is not None and kept.response["output"] == done["output"]
                    break
            else:
                raise AssertionError("no response.completed event")
        plain = await http.post("/responses", json={"model": route, "input": FRANCE})
        assert await store.get(plain.json()["id"], None) is not None
