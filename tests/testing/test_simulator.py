"""The upstream simulator over real sockets, checked with the official SDKs and raw clients.

Every test talks to a simulator bound to 127.0.0.1 on a free port. Latencies are a few
milliseconds so the whole file stays fast; timing tests use their own slower model.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
import yaml
from pydantic import ValidationError

import modelroute.testing as sim_pkg
from modelroute.testing import SimulatedModel, Simulator, SimulatorConfig
from modelroute.testing.sim_config import Percentiles
from modelroute.testing.sim_engine import LatencyDist, split_tokens, spread_logprob

FRANCE = "Paris is the capital of France."
UNSURE = "I am not sure about that one."
WEATHER_ARGS = {"city": "Paris", "unit": "C"}
TEN_WORDS = "one two three four five six seven eight nine ten"

CONFIG: dict[str, Any] = {
    "seed": 7,
    "models": {
        "small": {
            "reported_model": "small-2024-08-06",
            "system_fingerprint": "fp_small_1",
            "latency_ms": {"p50": 1, "p95": 3},
            "ttft_ms": {"p50": 1, "p95": 2},
            "tokens_per_second": 5000,
            "context_window": 200,
            "retry_after_s": 2,
            "answers": [
                {"match": "capital of France", "content": FRANCE, "logprob": -0.05},
                {
                    "match": "weather",
                    "tool_call": {"name": "get_weather", "arguments": WEATHER_ARGS},
                },
                {"match": "22", "content": "It is 22 degrees in Paris."},
                {"match": "unsure", "content": UNSURE, "logprob": -1.6},
            ],
            "default_answer": "Hello from the simulator.",
        },
        "paced": {
            "latency_ms": {"p50": 80},
            "ttft_ms": {"p50": 5},
            "tokens_per_second": 100,
            "default_answer": TEN_WORDS,
        },
    },
}

OPENAI_TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
ANTHROPIC_TOOLS: Any = [
    {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


def oa_body(text: str = "hi", model: str = "small", **extra: Any) -> dict[str, Any]:
    return {"model": model, "messages": [{"role": "user", "content": text}], **extra}


def an_body(text: str = "hi", model: str = "small", **extra: Any) -> dict[str, Any]:
    body = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
    return {**body, **extra}


# wire name -> (path, body builder)
WIRES: dict[str, tuple[str, Callable[..., dict[str, Any]]]] = {
    "openai": ("/v1/chat/completions", oa_body),
    "anthropic": ("/v1/messages", an_body),
}


def error_type(wire: str, body: dict[str, Any]) -> str:
    """The provider's error type, wherever its format puts it."""
    if wire == "openai":
        return str(body["error"]["type"])
    assert body["type"] == "error"
    return str(body["error"]["type"])


def sse_events(raw: str) -> list[tuple[str | None, str]]:
    """(event, data) pairs of an SSE body."""
    events = []
    for block in raw.strip().split("\n\n"):
        event, data = None, ""
        for line in block.splitlines():
            if line.startswith("event: "):
                event = line[len("event: ") :]
            elif line.startswith("data: "):
                data = line[len("data: ") :]
        events.append((event, data))
    return events


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(CONFIG) as s:
        yield s


@pytest.fixture
async def http(sim: Simulator) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=sim.base_url, timeout=5.0) as client:
        yield client


@pytest.fixture
async def oai(sim: Simulator) -> AsyncIterator[openai.AsyncOpenAI]:
    client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="sk-test", max_retries=0)
    yield client
    await client.close()


@pytest.fixture
async def ant(sim: Simulator) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = anthropic.AsyncAnthropic(base_url=sim.base_url, api_key="sk-test", max_retries=0)
    yield client
    await client.close()


# -- OpenAI wire ---------------------------------------------------------------------------


async def test_openai_completion_parses_in_sdk(oai: openai.AsyncOpenAI) -> None:
    question = "What is the capital of France?"
    raw = await oai.chat.completions.with_raw_response.create(
        model="small", messages=[{"role": "user", "content": question}]
    )
    assert raw.headers["x-sim-outcome"] == "ok"
    r = raw.parse()
    assert r.object == "chat.completion"
    assert r.id.startswith("chatcmpl-")
    assert r.model == "small-2024-08-06"
    assert r.system_fingerprint == "fp_small_1"
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == FRANCE
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].logprobs is None
    assert r.usage is not None
    assert r.usage.prompt_tokens == len(question) // 4 + 4
    assert r.usage.completion_tokens == len(FRANCE.split())
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.prompt_tokens_details is not None
    assert r.usage.prompt_tokens_details.cached_tokens == 0
    assert r.usage.completion_tokens_details is not None
    assert r.usage.completion_tokens_details.reasoning_tokens == 0


async def test_openai_unmatched_question_gets_default_answer(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(
        model="small",
        messages=[
            {"role": "user", "content": "capital of France"},
            {"role": "assistant", "content": "Paris"},
            {"role": "user", "content": [{"type": "text", "text": "and something else"}]},
        ],
    )
    # Only the last user message is matched, and text parts are read.
    assert r.choices[0].message.content == "Hello from the simulator."


async def test_openai_stream_parses_in_sdk(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="small",
        messages=[{"role": "user", "content": "capital of France?"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [c async for c in stream]
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert all(c.model == "small-2024-08-06" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == FRANCE
    content_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(content_chunks) == len(FRANCE.split())  # one delta per token
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finishes[-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == len(FRANCE.split())


async def test_openai_raw_stream_ends_with_done(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/chat/completions", json=oa_body(stream=True))
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse_events(r.text)
    assert events[-1] == (None, "[DONE]")
    # Without include_usage there is no usage chunk and no "usage" key at all.
    assert all("usage" not in orjson.loads(d) for _, d in events[:-1])


async def test_openai_logprobs_mean_equals_configured(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(
        model="small",
        messages=[{"role": "user", "content": "unsure?"}],
        logprobs=True,
        top_logprobs=3,
    )
    lp = r.choices[0].logprobs
    assert lp is not None and lp.content is not None
    assert "".join(t.token for t in lp.content) == UNSURE
    assert len(lp.content) == len(UNSURE.split())
    assert statistics.fmean(t.logprob for t in lp.content) == pytest.approx(-1.6, abs=1e-9)
    assert len({t.logprob for t in lp.content}) > 1  # spread, not constant
    for t in lp.content:
        assert t.bytes == list(t.token.encode())
        assert len(t.top_logprobs) == 3
        assert t.top_logprobs[0].token == t.token
        assert t.top_logprobs[0].logprob == t.logprob
        assert sum(2.718281828**a.logprob for a in t.top_logprobs) <= 1.0 + 1e-9


async def test_openai_streamed_logprobs(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="small",
        messages=[{"role": "user", "content": "unsure?"}],
        logprobs=True,
        stream=True,
    )
    values = []
    async for chunk in stream:
        choice = chunk.choices[0]
        if choice.delta.content:
            assert choice.logprobs is not None and choice.logprobs.content is not None
            values += [t.logprob for t in choice.logprobs.content]
    assert len(values) == len(UNSURE.split())
    assert statistics.fmean(values) == pytest.approx(-1.6, abs=1e-9)


async def test_openai_max_tokens_truncates_with_length(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "capital of France"}], max_tokens=3
    )
    assert r.choices[0].message.content == "Paris is the"
    assert r.choices[0].finish_reason == "length"
    assert r.usage is not None and r.usage.completion_tokens == 3


async def test_openai_stop_sequence_cuts_answer(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "capital of France"}], stop=[" of"]
    )
    assert r.choices[0].message.content == "Paris is the capital"
    assert r.choices[0].finish_reason == "stop"


async def test_openai_tool_call_round_trip(oai: openai.AsyncOpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Paris?"}]
    first = await oai.chat.completions.create(model="small", messages=messages, tools=OPENAI_TOOLS)
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.type == "function"
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == WEATHER_ARGS
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "22 C, sunny"},
    ]
    second = await oai.chat.completions.create(model="small", messages=messages, tools=OPENAI_TOOLS)
    # After a tool result the model answers (matching on the tool output) instead of looping.
    assert second.choices[0].finish_reason == "stop"
    assert second.choices[0].message.content == "It is 22 degrees in Paris."


async def test_openai_without_tools_answers_in_text(oai: openai.AsyncOpenAI) -> None:
    r = await oai.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "weather?"}]
    )
    assert r.choices[0].message.tool_calls is None
    assert r.choices[0].finish_reason == "stop"


async def test_openai_streamed_tool_call(oai: openai.AsyncOpenAI) -> None:
    stream = await oai.chat.completions.create(
        model="small",
        messages=[{"role": "user", "content": "weather?"}],
        tools=OPENAI_TOOLS,
        stream=True,
    )
    name, args, finish = None, "", None
    async for chunk in stream:
        choice = chunk.choices[0]
        for call in choice.delta.tool_calls or []:
            assert call.function is not None
            name = call.function.name or name
            args += call.function.arguments or ""
        finish = choice.finish_reason or finish
    assert name == "get_weather"
    assert json.loads(args) == WEATHER_ARGS
    assert finish == "tool_calls"


async def test_models_list_and_health(http: httpx.AsyncClient) -> None:
    models = (await http.get("/v1/models")).json()
    assert models["object"] == "list"
    assert [m["id"] for m in models["data"]] == ["small", "paced"]
    anthropic_models = (await http.get("/v1/models", headers={"anthropic-version": "x"})).json()
    assert anthropic_models["has_more"] is False
    assert anthropic_models["data"][0]["type"] == "model"
    health = await http.get("/health")
    assert health.status_code == 200 and health.json() == {"status": "ok"}


# -- Anthropic wire ------------------------------------------------------------------------


async def test_anthropic_message_parses_in_sdk(ant: anthropic.AsyncAnthropic) -> None:
    question = "What is the capital of France?"
    raw = await ant.messages.with_raw_response.create(
        model="small",
        max_tokens=64,
        system="Be brief.",
        messages=[{"role": "user", "content": question}],
    )
    assert raw.headers["x-sim-outcome"] == "ok"
    m = await raw.parse()
    assert m.type == "message"
    assert m.id.startswith("msg_")
    assert m.role == "assistant"
    assert m.model == "small-2024-08-06"
    assert m.content[0].type == "text"
    assert m.content[0].text == FRANCE
    assert m.stop_reason == "end_turn"
    assert m.stop_sequence is None
    # The system prompt counts as one more message in the estimate.
    assert m.usage.input_tokens == (len(question) + len("Be brief.")) // 4 + 8
    assert m.usage.output_tokens == len(FRANCE.split())
    assert m.usage.cache_read_input_tokens == 0
    assert m.usage.cache_creation_input_tokens == 0


async def test_anthropic_stream_parses_in_sdk(ant: anthropic.AsyncAnthropic) -> None:
    async with ant.messages.stream(
        model="small", max_tokens=64, messages=[{"role": "user", "content": "capital of France"}]
    ) as stream:
        pieces = [t async for t in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == FRANCE
    assert len(pieces) == len(FRANCE.split())
    assert final.content[0].type == "text" and final.content[0].text == FRANCE
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == len(FRANCE.split())


async def test_anthropic_stream_event_sequence(http: httpx.AsyncClient) -> None:
    r = await http.post("/v1/messages", json=an_body("capital of France", stream=True))
    names = [event for event, _ in sse_events(r.text)]
    n = len(FRANCE.split())
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        *["content_block_delta"] * n,
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    # Every event's JSON "type" repeats its SSE event name, as in the real API.
    assert all(orjson.loads(data)["type"] == event for event, data in sse_events(r.text))


async def test_anthropic_max_tokens_and_stop_sequence(ant: anthropic.AsyncAnthropic) -> None:
    messages: Any = [{"role": "user", "content": "capital of France"}]
    cut = await ant.messages.create(model="small", max_tokens=2, messages=messages)
    assert cut.stop_reason == "max_tokens"
    assert cut.content[0].type == "text" and cut.content[0].text == "Paris is"
    stopped = await ant.messages.create(
        model="small", max_tokens=64, messages=messages, stop_sequences=["capital"]
    )
    assert stopped.stop_reason == "stop_sequence"
    assert stopped.stop_sequence == "capital"
    assert stopped.content[0].type == "text" and stopped.content[0].text == "Paris is the "


async def test_anthropic_tool_use_round_trip(ant: anthropic.AsyncAnthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    first = await ant.messages.create(
        model="small", max_tokens=64, tools=ANTHROPIC_TOOLS, messages=messages
    )
    assert first.stop_reason == "tool_use"
    block = first.content[0]
    assert block.type == "tool_use"
    assert block.name == "get_weather"
    assert block.input == WEATHER_ARGS
    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "22 C"}],
        },
    ]
    second = await ant.messages.create(
        model="small", max_tokens=64, tools=ANTHROPIC_TOOLS, messages=messages
    )
    assert second.stop_reason == "end_turn"
    assert second.content[0].type == "text"
    assert second.content[0].text == "It is 22 degrees in Paris."


async def test_anthropic_streamed_tool_use(ant: anthropic.AsyncAnthropic) -> None:
    async with ant.messages.stream(
        model="small",
        max_tokens=64,
        tools=ANTHROPIC_TOOLS,
        messages=[{"role": "user", "content": "weather?"}],
    ) as stream:
        final = await stream.get_final_message()
    assert final.stop_reason == "tool_use"
    assert final.content[0].type == "tool_use"
    assert final.content[0].input == WEATHER_ARGS


# -- HTTP-level faults ---------------------------------------------------------------------

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


# -- connection-level faults ---------------------------------------------------------------


async def test_reset_sends_rst_without_response(sim: Simulator) -> None:
    sim.update_model("small", script=["reset"])
    reader, writer = await asyncio.open_connection("127.0.0.1", sim.port)
    payload = orjson.dumps(oa_body())
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    await writer.drain()
    # An RST (not a FIN) is what makes the read fail with ECONNRESET rather than return b"".
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(reader.read(), timeout=2.0)
    writer.close()
    assert sim.stats()["small"] == {"reset": 1}


async def test_reset_is_a_connection_error_in_sdk(sim: Simulator, oai: openai.AsyncOpenAI) -> None:
    sim.update_model("small", script=["reset", "ok"])
    with pytest.raises(openai.APIConnectionError):
        await oai.chat.completions.create(
            model="small", messages=[{"role": "user", "content": "x"}]
        )
    # The server survives: the next request on a fresh connection is answered.
    r = await oai.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "x"}]
    )
    assert r.choices[0].message.content == "Hello from the simulator."


async def test_disconnect_mid_stream_leaves_incomplete_stream(
    sim: Simulator, oai: openai.AsyncOpenAI
) -> None:
    sim.update_model("small", script=["disconnect_mid_stream"])
    stream = await oai.chat.completions.create(
        model="small", messages=[{"role": "user", "content": "capital of France"}], stream=True
    )
    received = ""
    with pytest.raises(openai.APIConnectionError):
        async for chunk in stream:
            received += chunk.choices[0].delta.content or ""
            assert chunk.choices[0].finish_reason is None
    assert received  # a few chunks arrived first...
    assert FRANCE.startswith(received) and received != FRANCE  # ...but not the whole answer


async def test_disconnect_mid_stream_anthropic(sim: Simulator, http: httpx.AsyncClient) -> None:
    sim.update_model("small", script=["disconnect_mid_stream"])
    lines = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with http.stream("POST", "/v1/messages", json=an_body(FRANCE, stream=True)) as r:
            assert r.headers["x-sim-outcome"] == "disconnect_mid_stream"
            async for line in r.aiter_lines():
                lines.append(line)
    assert "event: content_block_delta" in lines
    assert "event: message_stop" not in lines


async def test_disconnect_without_stream_is_a_reset(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    sim.update_model("small", script=["disconnect_mid_stream"])
    with pytest.raises(httpx.TransportError):
        await http.post("/v1/chat/completions", json=oa_body())


async def test_stream_error_event_mid_stream(
    sim: Simulator, oai: openai.AsyncOpenAI, ant: anthropic.AsyncAnthropic
) -> None:
    sim.update_model("small", script=["stream_error", "stream_error", "stream_error"])
    messages: Any = [{"role": "user", "content": "capital of France"}]
    stream = await oai.chat.completions.create(model="small", messages=messages, stream=True)
    received = ""
    with pytest.raises(openai.APIError, match="server had an error"):
        async for chunk in stream:
            received += chunk.choices[0].delta.content or ""
    assert received and received != FRANCE
    with pytest.raises(anthropic.APIStatusError) as exc:
        async with ant.messages.stream(model="small", max_tokens=64, messages=messages) as s:
            async for _ in s.text_stream:
                pass
    assert isinstance(exc.value.body, dict)
    assert exc.value.body["error"]["type"] == "overloaded_error"
    # Not streamed, the same fault is an ordinary overloaded response.
    with pytest.raises(anthropic.OverloadedError):
        await ant.messages.create(model="small", max_tokens=64, messages=messages)


async def test_hang_never_answers_and_blocks_nothing(
    sim: Simulator, http: httpx.AsyncClient
) -> None:
    sim.update_model("small", script=["hang"])
    hung = asyncio.create_task(
        http.post("/v1/chat/completions", json=oa_body(), timeout=httpx.Timeout(5.0, read=0.4))
    )
    while sim.stats().get("small", {}).get("hang") != 1:
        await asyncio.sleep(0.005)
    # While one request hangs, others are served.
    r = await http.post("/v1/chat/completions", json=oa_body())
    assert r.status_code == 200
    assert not hung.done()
    with pytest.raises(httpx.ReadTimeout):
        await hung


async def test_timeout_answers_fifty_times_slower() -> None:
    config = {"models": {"slow": {"latency_ms": {"p50": 8}}}}
    async with Simulator(config) as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        sim.update_model("slow", script=["timeout", "timeout"])
        with pytest.raises(httpx.ReadTimeout):
            await http.post(
                "/v1/chat/completions",
                json=oa_body(model="slow"),
                timeout=httpx.Timeout(5, read=0.1),
            )
        started = time.perf_counter()
        r = await http.post("/v1/chat/completions", json=oa_body(model="slow"), timeout=5)
        elapsed = time.perf_counter() - started
    assert r.status_code == 200 and r.headers["x-sim-outcome"] == "timeout"
    assert 0.38 <= elapsed < 2.0  # 8 ms * 50 = 0.4 s


# -- timing --------------------------------------------------------------------------------


async def test_latency_and_token_pacing(http: httpx.AsyncClient) -> None:
    started = time.perf_counter()
    r = await http.post("/v1/chat/completions", json=oa_body(model="paced"))
    assert r.json()["choices"][0]["message"]["content"] == TEN_WORDS
    assert time.perf_counter() - started >= 0.075  # constant 80 ms
    arrivals = []
    body = oa_body(model="paced", stream=True)
    async with http.stream("POST", "/v1/chat/completions", json=body) as s:
        async for line in s.aiter_lines():
            if '"content":"' in line and '"content":""' not in line:
                arrivals.append(time.perf_counter())
    assert len(arrivals) == 10
    # 10 tokens at 100 tokens/s: 9 gaps of 10 ms between first and last.
    assert arrivals[-1] - arrivals[0] >= 0.08


def test_latency_distribution_fits_percentiles() -> None:
    import random

    dist = LatencyDist(Percentiles(p50=20, p95=60))
    rng = random.Random(1)
    samples = sorted(dist.sample_s(rng) * 1000 for _ in range(20_000))
    assert samples[10_000] == pytest.approx(20, rel=0.05)
    assert samples[19_000] == pytest.approx(60, rel=0.08)
    constant = LatencyDist(Percentiles(p50=15, p95=15))
    assert {constant.sample_s(rng) for _ in range(10)} == {0.015}


def test_tokens_and_logprob_spread() -> None:
    for text in ["Paris", " two  words ", "a b c", "", "   "]:
        assert "".join(split_tokens(text)) == text
    assert len(split_tokens("one two three")) == 3
    for n in (1, 2, 5, 8):
        values = spread_logprob(-0.7, n)
        assert len(values) == n
        assert statistics.fmean(values) == pytest.approx(-0.7, abs=1e-12)
        assert all(v <= 0 for v in values)


# -- scripts, admin, determinism -----------------------------------------------------------


async def test_script_is_consumed_in_order(sim: Simulator, http: httpx.AsyncClient) -> None:
    sim.update_model("small", script=["ok", "server_error", "ok", "rate_limited"])
    statuses = [
        (await http.post("/v1/chat/completions", json=oa_body())).status_code for _ in range(6)
    ]
    # Then back to the configured probabilities (no faults for this model).
    assert statuses == [200, 500, 200, 429, 200, 200]
    assert sim.stats()["small"] == {"ok": 4, "server_error": 1, "rate_limited": 1}


async def test_script_from_config_and_reset_refills_it() -> None:
    config = {"models": {"m": {"script": ["overloaded", "ok"]}}}
    async with Simulator(config) as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        first = [
            (await http.post("/v1/messages", json=an_body(model="m"))).status_code for _ in range(2)
        ]
        assert (await http.post("/_sim/reset")).status_code == 200
        again = [
            (await http.post("/v1/messages", json=an_body(model="m"))).status_code for _ in range(2)
        ]
    assert first == again == [529, 200]


async def test_admin_endpoint_changes_model_at_run_time(
    sim: Simulator, http: httpx.AsyncClient, ant: anthropic.AsyncAnthropic
) -> None:
    change = {"reported_model": "small-2024-11-20", "system_fingerprint": "fp_small_2"}
    r = await http.post("/_sim/models/small", json=change)
    assert r.status_code == 200 and r.json()["reported_model"] == "small-2024-11-20"
    body = (await http.post("/v1/chat/completions", json=oa_body())).json()
    assert (body["model"], body["system_fingerprint"]) == ("small-2024-11-20", "fp_small_2")
    m = await ant.messages.create(
        model="small", max_tokens=8, messages=[{"role": "user", "content": "x"}]
    )
    assert m.model == "small-2024-11-20"
    # Invalid changes are refused whole, and nothing changes.
    bad = await http.post("/_sim/models/small", json={"faults": {"server_error": 0.7, "hang": 0.7}})
    assert bad.status_code == 400 and bad.json()["error"]["details"]
    assert (await http.post("/_sim/models/small", json={"colour": "red"})).status_code == 400
    assert sim.config.models["small"].faults.server_error == 0.0
    # A pushed script takes effect on the next request.
    await http.post("/_sim/models/small", json={"script": ["overloaded"]})
    assert (await http.post("/v1/chat/completions", json=oa_body())).status_code == 503
    stats = (await http.get("/_sim/stats")).json()
    assert stats == sim.stats() == {"small": {"ok": 2, "overloaded": 1}}
    await http.post("/_sim/reset")
    body = (await http.post("/v1/chat/completions", json=oa_body())).json()
    assert body["model"] == "small-2024-08-06"
    assert sim.stats() == {"small": {"ok": 1}}


async def test_update_model_python_api(sim: Simulator, http: httpx.AsyncClient) -> None:
    sim.update_model("small", faults={"server_error": 1.0})
    assert (await http.post("/v1/chat/completions", json=oa_body())).status_code == 500
    created = sim.update_model("fresh", default_answer="new here")
    assert isinstance(created, SimulatedModel)
    r = await http.post("/v1/chat/completions", json=oa_body(model="fresh"))
    assert r.json()["choices"][0]["message"]["content"] == "new here"
    with pytest.raises(ValidationError):
        sim.update_model("small", tokens_per_second=0)
    current = (await http.get("/_sim/models/fresh")).json()
    assert current["default_answer"] == "new here"


async def test_recent_requests_are_recorded(sim: Simulator, http: httpx.AsyncClient) -> None:
    await http.post(
        "/v1/chat/completions", json=oa_body(custom_field=[1, 2]), headers={"x-trace": "abc"}
    )
    [seen] = sim.requests()
    assert seen.endpoint == "/v1/chat/completions"
    assert (seen.model, seen.outcome) == ("small", "ok")
    assert seen.body["custom_field"] == [1, 2]
    assert seen.headers["x-trace"] == "abc"
    listed = (await http.get("/_sim/requests")).json()
    assert listed[0]["body"]["custom_field"] == [1, 2]


async def _outcome_sequence(seed: int, n: int) -> tuple[list[str], dict[str, int]]:
    faults = {"server_error": 0.2, "rate_limited": 0.1, "empty_content": 0.1}
    config = {"seed": seed, "models": {"m": {"faults": faults}, "other": {"faults": faults}}}
    outcomes = []
    async with Simulator(config) as sim, httpx.AsyncClient(base_url=sim.base_url) as http:
        for i in range(n):
            # Traffic to another model in between must not shift this model's sequence.
            if i % 3 == 0:
                await http.post("/v1/chat/completions", json=oa_body(model="other"))
            r = await http.post("/v1/chat/completions", json=oa_body(model="m"))
            outcomes.append(r.headers["x-sim-outcome"])
        return outcomes, sim.stats()["m"]


async def test_seeded_probabilities_are_reproducible() -> None:
    seq_a, counts_a = await _outcome_sequence(seed=11, n=150)
    seq_b, counts_b = await _outcome_sequence(seed=11, n=150)
    assert seq_a == seq_b and counts_a == counts_b
    assert set(counts_a) == {"ok", "server_error", "rate_limited", "empty_content"}
    assert sum(counts_a.values()) == 150
    assert 15 <= counts_a["server_error"] <= 45  # 20 % of 150, loosely
    seq_c, _ = await _outcome_sequence(seed=12, n=150)
    assert seq_c != seq_a


# -- config --------------------------------------------------------------------------------


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ValidationError):
        SimulatorConfig.model_validate({"models": {"m": {"latency": 5}}})
    with pytest.raises(ValidationError):
        SimulatorConfig.model_validate(
            {"models": {"m": {"faults": {"server_error": 0.6, "reset": 0.5}}}}
        )
    with pytest.raises(ValidationError):
        SimulatorConfig.model_validate({"models": {"m": {"latency_ms": {"p50": 50, "p95": 10}}}})
    with pytest.raises(ValidationError):
        SimulatorConfig.model_validate({"models": {"m": {"script": ["ok", "explode"]}}})


def test_config_from_yaml(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    loaded = SimulatorConfig.from_yaml(path)
    assert loaded.seed == 7
    assert loaded.models["small"].answers[1].tool_call is not None
    assert loaded.models["paced"].latency_ms.p50 == 80


def test_run_simulator_serves_until_sigterm(tmp_path: Path) -> None:
    path = tmp_path / "sim.yaml"
    path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    src = Path(sim_pkg.__file__).resolve().parents[2]
    code = (
        "import sys; from modelroute.testing import run_simulator; "
        f"run_simulator({str(path)!r}, port=0, ready=lambda url: print(url, flush=True))"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        r = httpx.post(f"{url}/v1/chat/completions", json=oa_body("capital of France"), timeout=5)
        assert r.json()["choices"][0]["message"]["content"] == FRANCE
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
