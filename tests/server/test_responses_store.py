"""The stored responses' parts, in process on an injected clock: expiry, the bounds, who may
see an entry, the input items as stored, a previous response's conversation before a new
input, and the pages of ``input_items``."""

from __future__ import annotations

from typing import Any

import pytest

from modelroute.cache import MemoryCache
from modelroute.server.responses_checks import BridgeError
from modelroute.server.responses_store import ResponseStore, StoredResponse, input_items
from modelroute.server.responses_stored import is_stored_path, items_page, with_previous


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def response(response_id: str, text: str = "Paris") -> dict[str, Any]:
    message = {
        "type": "message",
        "id": f"msg_{response_id}",
        "status": "completed",
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }
    return {"id": response_id, "object": "response", "status": "completed", "output": [message]}


def test_input_items_as_stored() -> None:
    assert input_items("hi", "resp_abc") == [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "hi"}],
            "status": "completed",
            "id": "msg_abc_0",
        }
    ]
    given: list[Any] = [
        {"role": "assistant", "content": "before"},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "42", "id": "fco_mine"},
    ]
    items = input_items(given, "resp_abc")
    assert items[0]["content"] == [{"type": "output_text", "text": "before", "annotations": []}]
    assert [item["id"] for item in items] == ["msg_abc_0", "fc_abc_1", "fco_mine"]
    assert given[0] == {"role": "assistant", "content": "before"}  # the request is not changed


async def test_entries_expire_and_only_their_key_sees_them() -> None:
    clock = Clock()
    store = ResponseStore(MemoryCache(clock=clock), ttl_s=60)
    await store.keep(StoredResponse(response("resp_1"), input_items("q", "resp_1"), "key-a"))
    await store.keep(StoredResponse(response("resp_2"), input_items("q", "resp_2"), None))
    assert (await store.get("resp_1", "key-a")) is not None
    assert await store.get("resp_1", "key-b") is None and await store.get("resp_1", None) is None
    assert await store.delete("resp_1", "key-b") is False  # another key's: not there for it
    assert (await store.get("resp_2", "key-b")) is not None  # made without a key: anyone's
    clock.now += 60
    assert await store.get("resp_1", "key-a") is None and await store.get("resp_2", None) is None


async def test_the_store_is_bounded_and_deletes() -> None:
    store = ResponseStore(MemoryCache(max_entries=2, max_bytes=1_000_000))
    for n in range(3):
        await store.keep(StoredResponse(response(f"resp_{n}"), [], None))
    assert await store.get("resp_0", None) is None  # the oldest went
    assert await store.delete("resp_2", None) is True
    assert await store.get("resp_2", None) is None and await store.delete("resp_2", None) is False
    with pytest.raises(ValueError):
        ResponseStore(ttl_s=0)


def test_damaged_entries_read_as_none() -> None:
    assert StoredResponse.decode(b"not json") is None
    assert StoredResponse.decode(b'{"response": [], "input": [], "owner": null}') is None
    entry = StoredResponse(response("resp_1"), [{"type": "message"}], "k", "native")
    assert StoredResponse.decode(entry.encode()) == entry
    assert entry.kept_upstream() is None  # the upstream did not say it stored it
    kept = StoredResponse({**response("resp_1"), "store": True}, [], None, "native")
    assert kept.kept_upstream() == "native"
    assert StoredResponse({**response("r"), "store": True}, [], None).kept_upstream() is None


async def test_with_previous_puts_the_conversation_first() -> None:
    store = ResponseStore()
    first = response("resp_1")
    first["output"].insert(0, {"type": "reasoning", "id": "rs_1", "summary": []})
    await store.keep(StoredResponse(first, input_items("capital of France?", "resp_1"), "k"))
    body = {"model": "m", "input": "and Spain?", "previous_response_id": "resp_1", "store": True}
    out, previous = await with_previous(store, body, "k")
    assert previous is not None and previous.response == first
    assert "previous_response_id" not in out and out["store"] is True
    assert out["input"] == [
        {"type": "message", "role": "user", "content": [
            {"type": "input_text", "text": "capital of France?"}]},
        {"type": "message", "role": "assistant", "content": [
            {"type": "output_text", "text": "Paris", "annotations": []}]},
        {"role": "user", "content": "and Spain?"},
    ]  # fmt: skip
    assert await with_previous(store, {"input": "x"}, "k") == ({"input": "x"}, None)
    with pytest.raises(BridgeError) as caught:
        await with_previous(store, body, "someone else")
    assert caught.value.code == "previous_response_not_found"
    assert caught.value.param == "previous_response_id"


def test_pages_of_input_items() -> None:
    items = [{"type": "message", "id": f"msg_{n}"} for n in range(5)]
    entry = StoredResponse(response("resp_1"), items, None)
    newest = items_page(entry, {"limit": ["2"]})
    assert [i["id"] for i in newest["data"]] == ["msg_4", "msg_3"] and newest["has_more"]
    assert (newest["first_id"], newest["last_id"]) == ("msg_4", "msg_3")
    rest = items_page(entry, {"after": ["msg_3"]})
    assert [i["id"] for i in rest["data"]] == ["msg_2", "msg_1", "msg_0"]
    assert rest["has_more"] is False
    oldest = items_page(entry, {"order": ["asc"], "after": ["msg_3"]})
    assert [i["id"] for i in oldest["data"]] == ["msg_4"]
    for query in ({"limit": ["101"]}, {"limit": ["-1"]}, {"order": ["up"]}, {"after": ["no"]}):
        with pytest.raises(BridgeError):
            items_page(entry, query)
    empty = items_page(StoredResponse(response("resp_2"), [], None), {})
    assert empty["data"] == [] and empty["first_id"] is None


def test_which_paths_are_stored_responses() -> None:
    assert is_stored_path("/v1/responses/resp_1")
    assert is_stored_path("/v1/responses/resp_1/input_items")
    for other in ("/v1/responses", "/v1/responses/", "/v1/responses/a/b", "/v1/models/x"):
        assert not is_stored_path(other)
