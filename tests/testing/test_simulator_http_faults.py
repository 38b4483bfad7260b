"""HTTP-level faults of the simulator in both wire formats: error statuses and bodies the SDKs
classify, empty and malformed answers, context limits, bad requests, API keys."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from modelroute.testing import Simulator

from .simulator_support import CONFIG, WIRES, an_body, error_type, oa_body, sse_events

STATUS_FAULTS = [
    ("openai", "server_error", 500, "server_error"),
    ("openai", "overloaded", 503, "server_error"),
    ("openai", "rate_limited", 429, "requests"),
    ("anthropic", "server_error", 500, "api_error"),
    ("anthropic", "overloaded", 529, "overloaded_error"),
    ("anthropic", "rate_limited", 429, "rate_limit_error"),
]


@pytest.mark.parametrize(("wire", "fault", "status", "etype"), STATUS_FAULTS)
async def test_status_faults(
    sim: Simulator, http: httpx.AsyncClient, wire: str, fault: str, status: int, etype: str
) -> None:
    sim.update_model("small", script=[fault])
    path, body = WIRES[wire]
    r = await http.post(path, json=body())
    assert r.status_code == status
    assert r.headers["x-sim-outcome"] == fault
    assert error_type(wire, r.json()) == etype
    if fault == "rate_limited":
        assert r.headers["retry-after"] == "2"
        if wire == "openai":
            assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert sim.stats()["small"] == {fault: 1}


async def test_sdks_classify_fault_statuses(
    sim: Simulator, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    sim.update_model("small", script=["rate_limited", "server_error", "overloaded", "rate_limited"])
    messages: Any = [{"role": "user", "content": "hi"}]
    with pytest.raises(openai.RateLimitError) as rate:
        await oai.chat.completions.create(model="small", messages=messages)
    assert rate.value.response.headers["retry-after"] == "2"
    with pytest.raises(openai.InternalServerError):
        await oai.chat.completions.create(model="small", messages=messages)
    with pytest.raises(anthropic.OverloadedError):
        await ant.messages.create(model="small", max_tokens=8, messages=messages)
    with pytest.raises(anthropic.RateLimitError):
        await ant.messages.create(model="small", max_tokens=8, messages=messages)


async def test_empty_content_is_well_formed_but_empty(
    sim: Simulator, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    sim.update_model("small", script=["empty_content"] * 4)
    messages: Any = [{"role": "user", "content": "capital of France"}]
    r = await oai.chat.completions.create(model="small", messages=messages)
    assert r.choices[0].message.content == ""
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None and r.usage.completion_tokens == 0
    stream = await oai.chat.completions.create(model="small", messages=messages, stream=True)
    chunks = [c async for c in stream]
    assert not any(c.choices[0].delta.content for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    m = await ant.messages.create(model="small", max_tokens=64, messages=messages)
    assert m.content == [] and m.stop_reason == "end_turn" and m.usage.output_tokens == 0
    async with ant.messages.stream(model="small", max_tokens=64, messages=messages) as s:
        assert [t async for t in s.text_stream] == []


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
async def test_malformed_json_body(sim: Simulator, http: httpx.AsyncClient, wire: str) -> None:
    sim.update_model("small", script=["malformed_json"])
    path, body = WIRES[wire]
    r = await http.post(path, json=body())
    assert r.status_code == 200
    assert r.headers["x-sim-outcome"] == "malformed_json"
    assert r.headers["content-type"].startswith("application/json")
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(r.content)


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
async def test_malformed_json_in_stream(sim: Simulator, http: httpx.AsyncClient, wire: str) -> None:
    sim.update_model("small", script=["malformed_json"])
    path, body = WIRES[wire]
    r = await http.post(path, json=body(stream=True))
    assert r.status_code == 200
    bad = []
    for _, data in sse_events(r.text):
        try:
            orjson.loads(data) if data != "[DONE]" else None
        except orjson.JSONDecodeError:
            bad.append(data)
    assert len(bad) == 1


async def test_malformed_stream_breaks_sdk(sim: Simulator, oai: openai.AsyncOpenAI) -> None:
    sim.update_model("small", script=["malformed_json"])
    stream = await oai.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    with pytest.raises(ValueError):
        async for _ in stream:
            pass


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
async def test_context_length_exceeded(sim: Simulator, http: httpx.AsyncClient, wire: str) -> None:
    path, body = WIRES[wire]
    r = await http.post(path, json=body("x" * 1000))  # ~254 prompt tokens > 200
    assert r.status_code == 400
    assert r.headers["x-sim-outcome"] == "context_length"
    err = r.json()["error"]
    assert err["type"] == "invalid_request_error"
    if wire == "openai":
        assert err["code"] == "context_length_exceeded"
        assert err["param"] == "messages"
        assert err["message"].startswith("This model's maximum context length is 200 tokens.")
    else:
        assert err["message"] == "prompt is too long: 254 tokens > 200 maximum"
    assert sim.stats()["small"] == {"context_length": 1}


async def test_context_counts_max_tokens(http: httpx.AsyncClient) -> None:
    ok = await http.post("/v1/chat/completions", json=oa_body("hi", max_tokens=150))
    assert ok.status_code == 200
    over = await http.post("/v1/chat/completions", json=oa_body("hi", max_tokens=500))
    assert over.json()["error"]["code"] == "context_length_exceeded"
    a_over = await http.post("/v1/messages", json=an_body("hi", max_tokens=500))
    assert "exceed context limit: 4 + 500 > 200" in a_over.json()["error"]["message"]


async def test_unknown_model_and_malformed_requests(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    r = await http.post("/v1/chat/completions", json=oa_body(model="nope"))
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = await http.post("/v1/messages", json=an_body(model="nope"))
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    r = await http.post("/v1/chat/completions", content=b"{not json")
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    r = await http.post("/v1/chat/completions", json={"model": "small"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = await http.post("/v1/chat/completions", json=oa_body(max_tokens=0))
    assert r.status_code == 400 and r.json()["error"]["param"] == "max_tokens"
    no_max = an_body()
    del no_max["max_tokens"]
    r = await http.post("/v1/messages", json=no_max)
    assert r.status_code == 400
    assert r.json()["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Field required",
    }
    assert sim.stats() == {
        "nope": {"unknown_model": 2},
        "*": {"bad_request": 1},
        "small": {"bad_request": 3},
    }


async def test_api_key_enforced_in_both_formats() -> None:
    async with (
        Simulator({**CONFIG, "api_key": "sk-xyz"}) as sim,
        httpx.AsyncClient(base_url=sim.base_url) as http,
    ):
        r = await http.post("/v1/chat/completions", json=oa_body())
        assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
        good = {"Authorization": "Bearer sk-xyz"}
        r = await http.post("/v1/chat/completions", json=oa_body(), headers=good)
        assert r.status_code == 200
        r = await http.post("/v1/messages", json=an_body(), headers={"x-api-key": "sk-bad"})
        assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
        r = await http.post("/v1/messages", json=an_body(), headers={"x-api-key": "sk-xyz"})
        assert r.status_code == 200
        assert (await http.get("/v1/models")).status_code == 401
        assert (await http.get("/v1/models", headers=good)).status_code == 200
        bad = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-no", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            await bad.chat.completions.create(
                model="small", messages=[{"role": "user", "content": "x"}]
            )
        await bad.close()
        assert sim.stats()["small"] == {"unauthorized": 3, "ok": 2}
