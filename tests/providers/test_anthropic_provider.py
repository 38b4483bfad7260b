"""AnthropicProvider against the simulator's real Anthropic Messages endpoint, over 127.0.0.1."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anthropic
import orjson
import pytest
from aiohttp import web
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from modelroute.failures import FailureClass, classify
from modelroute.policy.compiled import Model
from modelroute.pricing import PriceTable
from modelroute.providers.anthropic import ANTHROPIC_VERSION, AnthropicProvider
from modelroute.providers.http import Transport
from modelroute.testing import Simulator
from modelroute.types import StreamChunk, UpstreamError

KEY = "sk-ant-test"
FRANCE = "Paris is the capital of France."
WEATHER_ARGS = {"city": "Paris", "unit": "C"}
CONFIG: dict[str, Any] = {
    "seed": 3,
    "api_key": KEY,
    "models": {
        "claude-sim": {
            "reported_model": "claude-sim-20250929",
            "latency_ms": {"p50": 1, "p95": 2},
            "ttft_ms": {"p50": 1, "p95": 2},
            "tokens_per_second": 5000,
            "retry_after_s": 2,
            "answers": [
                {"match": "capital of France", "content": FRANCE},
                {
                    "match": "weather",
                    "tool_call": {"name": "get_weather", "arguments": WEATHER_ARGS},
                },
            ],
        }
    },
}
WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


def model(base_url: str, model_id: str = "claude-sim") -> Model:
    return Model(
        name="claude",
        provider="anthropic",
        base_url=base_url,
        model_id=model_id,
        api_key_env=None,
        prices=PriceTable(
            input=3.0, output=15.0, cached_input=0.3, cache_write=3.75, source="policy"
        ),
        context_window=200_000,
        max_output_tokens=None,
        capabilities=frozenset({"tools"}),
        latency_p50_ms=1.0,
        latency_p95_ms=2.0,
        quality={},
        floating=False,
    )


def ask(text: str, **extra: Any) -> dict[str, Any]:
    return {"model": "route-name", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture
async def sim() -> AsyncIterator[Simulator]:
    async with Simulator(CONFIG) as s:
        yield s


@pytest.fixture
async def provider() -> AsyncIterator[AnthropicProvider]:
    transport = Transport()
    yield AnthropicProvider(transport)
    await transport.aclose()


async def collect(stream: AsyncIterator[StreamChunk]) -> list[StreamChunk]:
    return [chunk async for chunk in stream]


# -- plain -----------------------------------------------------------------------------------


async def test_plain_completion(sim: Simulator, provider: AnthropicProvider) -> None:
    body = ask("What is the capital of France?", temperature=0.2, n=1, seed=4)
    body["messages"].insert(0, {"role": "system", "content": "Be exact."})
    completion = await provider.complete(model(sim.base_url), body, KEY)
    ChatCompletion.model_validate(completion.body)
    assert completion.content == FRANCE
    assert completion.finish_reason == "stop"
    assert completion.model_reported == "claude-sim-20250929"
    assert completion.body["id"].startswith("msg_")
    assert completion.usage is not None
    assert completion.usage.output_tokens == len(FRANCE.split())
    assert completion.usage.input_tokens > 0
    [seen] = sim.requests()
    assert seen.endpoint == "/v1/messages"
    assert seen.headers["x-api-key"] == KEY
    assert seen.headers["anthropic-version"] == ANTHROPIC_VERSION
    assert "authorization" not in seen.headers
    assert seen.body["model"] == "claude-sim"  # the model id, not the route name
    assert seen.body["system"] == "Be exact."
    assert seen.body["max_tokens"] == 4096
    assert seen.body["stream"] is False
    assert {"n", "seed"}.isdisjoint(seen.body)


async def test_base_url_with_v1_is_not_doubled(sim: Simulator, provider: AnthropicProvider) -> None:
    for base in (sim.base_url + "/v1", sim.base_url + "/v1/", sim.base_url + "/"):
        completion = await provider.complete(model(base), ask("capital of France"), KEY)
        assert completion.content == FRANCE
    assert [r.endpoint for r in sim.requests()] == ["/v1/messages"] * 3


async def test_tool_call(sim: Simulator, provider: AnthropicProvider) -> None:
    body = ask("What is the weather in Paris?", tools=[WEATHER_TOOL], tool_choice="required")
    completion = await provider.complete(model(sim.base_url), body, KEY)
    ChatCompletion.model_validate(completion.body)
    assert completion.finish_reason == "tool_calls"
    assert completion.tool_calls == 1
    [call] = completion.body["choices"][0]["message"]["tool_calls"]
    assert call["function"]["name"] == "get_weather"
    assert orjson.loads(call["function"]["arguments"]) == WEATHER_ARGS
    assert call["id"].startswith("toolu_")
    [seen] = sim.requests()
    assert seen.body["tools"][0]["input_schema"] == WEATHER_TOOL["function"]["parameters"]
    assert seen.body["tool_choice"] == {"type": "any"}


async def test_tool_result_turn_gets_an_answer(sim: Simulator, provider: AnthropicProvider) -> None:
    """The second leg of a tool loop: the result goes back as a tool_result block."""
    first = await provider.complete(
        model(sim.base_url), ask("weather in Paris?", tools=[WEATHER_TOOL]), KEY
    )
    assistant = first.body["choices"][0]["message"]
    body = ask("weather in Paris?", tools=[WEATHER_TOOL])
    body["messages"] += [
        assistant,
        {"role": "tool", "tool_call_id": assistant["tool_calls"][0]["id"], "content": "22C"},
    ]
    second = await provider.complete(model(sim.base_url), body, KEY)
    # The simulator answers in text once the last user turn carries a tool result.
    assert second.finish_reason == "stop"
    assert second.tool_calls == 0
    sent = sim.requests()[-1].body["messages"]
    assert sent[1]["content"][0]["type"] == "tool_use"
    assert sent[2]["content"][0] == {
        "type": "tool_result",
        "tool_use_id": assistant["tool_calls"][0]["id"],
        "content": "22C",
    }


# -- streamed ----------------------------------------------------------------------------------


async def test_streamed_text(sim: Simulator, provider: AnthropicProvider) -> None:
    chunks = await collect(provider.stream(model(sim.base_url), ask("capital of France"), KEY))
    for chunk in chunks:
        ChatCompletionChunk.model_validate(chunk.data)
    assert chunks[0].data["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c.content for c in chunks) == FRANCE
    assert sum(1 for c in chunks if c.content) > 1  # really streamed, piece by piece
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["stop"]
    final = chunks[-1]
    assert final.data["choices"] == []
    assert final.usage is not None
    assert final.usage.output_tokens == len(FRANCE.split())
    assert final.usage.input_tokens > 0
    [seen] = sim.requests()
    assert seen.body["stream"] is True
    assert seen.headers["accept"] == "text/event-stream"


async def test_streamed_tool_call(sim: Simulator, provider: AnthropicProvider) -> None:
    body = ask("weather in Paris?", tools=[WEATHER_TOOL])
    chunks = await collect(provider.stream(model(sim.base_url), body, KEY))
    calls = [c.data["choices"][0]["delta"]["tool_calls"][0] for c in chunks if c.tool_call]
    assert calls[0]["function"]["name"] == "get_weather"
    assert calls[0]["id"].startswith("toolu_")
    arguments = "".join(c["function"]["arguments"] for c in calls)
    assert orjson.loads(arguments) == WEATHER_ARGS
    assert len(calls) > 2  # the arguments arrived in several fragments
    assert [c.finish_reason for c in chunks if c.finish_reason] == ["tool_calls"]


# -- failures ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "status", "error_type", "cls"),
    [
        ("rate_limited", 429, "rate_limit_error", FailureClass.RATE_LIMITED),
        ("overloaded", 529, "overloaded_error", FailureClass.OVERLOADED),
        ("server_error", 500, "api_error", FailureClass.SERVER_ERROR),
    ],
)
@pytest.mark.parametrize("streamed", [False, True])
async def test_error_statuses_raise_upstream_error(
    sim: Simulator,
    provider: AnthropicProvider,
    fault: str,
    status: int,
    error_type: str,
    cls: FailureClass,
    streamed: bool,
) -> None:
    sim.update_model("claude-sim", script=[fault])
    with pytest.raises(UpstreamError) as caught:
        if streamed:
            await collect(provider.stream(model(sim.base_url), ask("hi"), KEY))
        else:
            await provider.complete(model(sim.base_url), ask("hi"), KEY)
    error = caught.value
    assert error.status == status
    assert orjson.loads(error.body)["error"]["type"] == error_type
    failure = classify(error)
    assert failure.cls is cls
    if fault == "rate_limited":
        assert failure.retry_after_s == 2


async def test_wrong_key_is_an_auth_failure(sim: Simulator, provider: AnthropicProvider) -> None:
    with pytest.raises(UpstreamError) as caught:
        await provider.complete(model(sim.base_url), ask("hi"), "sk-wrong")
    assert caught.value.status == 401
    assert classify(caught.value).cls is FailureClass.AUTH


async def test_disconnect_mid_stream_is_a_stream_cut(
    sim: Simulator, provider: AnthropicProvider
) -> None:
    sim.update_model("claude-sim", script=["disconnect_mid_stream"])
    received: list[StreamChunk] = []
    with pytest.raises(UpstreamError) as caught:
        async for chunk in provider.stream(model(sim.base_url), ask("capital of France"), KEY):
            received.append(chunk)
    assert caught.value.note == "stream_cut"
    assert classify(caught.value).cls is FailureClass.SERVER_ERROR
    text = "".join(c.content for c in received)
    assert text and FRANCE.startswith(text) and text != FRANCE  # some, not all, arrived


async def test_stream_closed_cleanly_before_message_stop_is_a_stream_cut(
    provider: AnthropicProvider,
) -> None:
    """A well-formed stream that just stops (no transport error) is still cut short."""
    start = {
        "type": "message_start",
        "message": {"id": "msg_1", "model": "m", "content": [], "usage": {"input_tokens": 3}},
    }
    delta = {
        "type": "content_block_delta",
        "index": 0,
        "delta": {"type": "text_delta", "text": "Par"},
    }
    body = b"".join(
        f"event: {e['type']}\ndata: {orjson.dumps(e).decode()}\n\n".encode() for e in (start, delta)
    )

    async def truncated(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="text/event-stream")

    app = web.Application()
    app.router.add_post("/v1/messages", truncated)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        received: list[StreamChunk] = []
        with pytest.raises(UpstreamError) as caught:
            async for chunk in provider.stream(model(f"http://127.0.0.1:{port}"), ask("x"), KEY):
                received.append(chunk)
    finally:
        await runner.cleanup()
    assert (caught.value.note, caught.value.cause) == ("stream_cut", "EndOfStream")
    assert classify(caught.value).cls is FailureClass.SERVER_ERROR
    assert "".join(c.content for c in received) == "Par"


async def test_error_event_mid_stream(sim: Simulator, provider: AnthropicProvider) -> None:
    sim.update_model("claude-sim", script=["stream_error"])
    received: list[StreamChunk] = []
    with pytest.raises(UpstreamError) as caught:
        async for chunk in provider.stream(model(sim.base_url), ask("capital of France"), KEY):
            received.append(chunk)
    assert caught.value.note == "stream_error_event"
    assert classify(caught.value).cls is FailureClass.OVERLOADED
    assert any(c.content for c in received)


@pytest.mark.parametrize("streamed", [False, True])
async def test_malformed_json_is_an_invalid_response(
    sim: Simulator, provider: AnthropicProvider, streamed: bool
) -> None:
    sim.update_model("claude-sim", script=["malformed_json"])
    with pytest.raises(UpstreamError) as caught:
        if streamed:
            await collect(provider.stream(model(sim.base_url), ask("hi"), KEY))
        else:
            await provider.complete(model(sim.base_url), ask("hi"), KEY)
    assert caught.value.note == "invalid_json"
    assert classify(caught.value).cls is FailureClass.INVALID_RESPONSE


async def test_empty_answer_is_empty(sim: Simulator, provider: AnthropicProvider) -> None:
    sim.update_model("claude-sim", script=["empty_content", "empty_content"])
    completion = await provider.complete(model(sim.base_url), ask("hi"), KEY)
    assert completion.is_empty
    chunks = await collect(provider.stream(model(sim.base_url), ask("hi"), KEY))
    assert not any(c.has_output for c in chunks)


@pytest.mark.parametrize("streamed", [False, True])
async def test_untranslatable_request_is_a_bad_request_sent_nowhere(
    sim: Simulator, provider: AnthropicProvider, streamed: bool
) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{oops"}}
    body = ask("hi")
    body["messages"].append({"role": "assistant", "tool_calls": [call]})
    with pytest.raises(UpstreamError) as caught:
        if streamed:
            await collect(provider.stream(model(sim.base_url), body, KEY))
        else:
            await provider.complete(model(sim.base_url), body, KEY)
    error = caught.value
    assert error.status == 400
    assert orjson.loads(error.body)["error"]["type"] == "invalid_request_error"
    assert "not valid JSON" in error.detail
    assert classify(error).cls is FailureClass.BAD_REQUEST
    assert sim.requests() == []


async def test_connection_refused_is_a_connect_error(provider: AnthropicProvider) -> None:
    async with Simulator(CONFIG) as gone:
        base = gone.base_url
    with pytest.raises(UpstreamError) as caught:
        await provider.complete(model(base), ask("hi"), KEY)
    assert classify(caught.value).cls is FailureClass.CONNECT_ERROR


# -- cross-check with the official SDK -----------------------------------------------------------


async def test_same_answer_as_the_official_sdk(sim: Simulator, provider: AnthropicProvider) -> None:
    """What the anthropic SDK reads from the simulator, we read too (text, tools, usage)."""
    # anthropic 2.x authenticates with a Bearer token; the simulator checks x-api-key.
    client = anthropic.AsyncAnthropic(
        base_url=sim.base_url, api_key=KEY, max_retries=0, default_headers={"x-api-key": KEY}
    )
    try:
        sdk = await client.messages.create(
            model="claude-sim",
            max_tokens=64,
            messages=[{"role": "user", "content": "weather in Paris?"}],
            tools=[{"name": "get_weather", "input_schema": {"type": "object"}}],
        )
    finally:
        await client.close()
    ours = await provider.complete(
        model(sim.base_url), ask("weather in Paris?", tools=[WEATHER_TOOL]), KEY
    )
    [block] = sdk.content
    assert block.type == "tool_use"
    [call] = ours.body["choices"][0]["message"]["tool_calls"]
    assert (call["function"]["name"], orjson.loads(call["function"]["arguments"])) == (
        block.name,
        block.input,
    )
    assert ours.usage is not None
    assert ours.usage.output_tokens == sdk.usage.output_tokens
    assert sdk.stop_reason == "tool_use" and ours.finish_reason == "tool_calls"
