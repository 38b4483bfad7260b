"""The provider conformance suite: every adapter, one set of expectations, real sockets.

Each provider kind in the registry talks to the simulator in its own wire format; what comes
back must be the same canonical answer, and every failure must classify to the same class.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelroute.failures import FailureClass, classify
from modelroute.policy.compiled import Model
from modelroute.pricing import PriceTable
from modelroute.providers.base import Provider
from modelroute.providers.http import Transport
from modelroute.providers.registry import build_providers
from modelroute.testing import Simulator
from modelroute.types import Completion, StreamChunk, UpstreamError

KINDS = ["openai", "simulator", "anthropic"]
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]
SIM = {
    "seed": 3,
    "models": {
        "conf-model": {
            "reported_model": "conf-model-2024-01-01",
            "system_fingerprint": "fp_conf",
            "context_window": 8000,
            "tokens_per_second": 5000,
            "retry_after_s": 2,
            "answers": [
                {
                    "match": "weather",
                    "content": "",
                    "tool_call": {"name": "get_weather", "arguments": {"city": "Oslo"}},
                }
            ],
            "default_answer": "four words of answer",
        }
    },
}


def _model(kind: str, sim: Simulator) -> Model:
    base = sim.base_url if kind == "anthropic" else sim.openai_base_url
    return Model(
        name="conf",
        provider=kind,
        base_url=base,
        model_id="conf-model",
        api_key_env=None,
        prices=PriceTable(1, 2, 0.5, 1.25, "policy"),
        context_window=2000,
        max_output_tokens=None,
        capabilities=frozenset(),
        latency_p50_ms=1,
        latency_p95_ms=2,
        quality={},
        floating=False,
    )


def _ask(text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "ignored", "messages": [{"role": "user", "content": text}], **extra}


@pytest.fixture(params=KINDS)
async def adapter(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[Provider, Model, Simulator]]:
    async with Simulator(SIM) as sim:
        transport = Transport()
        provider = build_providers(transport)[request.param]
        try:
            yield provider, _model(request.param, sim), sim
        finally:
            await transport.aclose()


async def _collect(provider: Provider, model: Model, body: dict[str, Any]) -> list[StreamChunk]:
    return [chunk async for chunk in provider.stream(model, body, "key")]


async def test_complete_gives_the_canonical_answer(adapter: Any) -> None:
    provider, model, _sim = adapter
    completion: Completion = await provider.complete(model, _ask(), "key")
    assert completion.content == "four words of answer"
    assert completion.finish_reason == "stop"
    assert completion.model_reported == "conf-model-2024-01-01"
    assert completion.usage is not None
    assert completion.usage.input_tokens > 0 and completion.usage.output_tokens > 0
    assert completion.body["object"] == "chat.completion"
    assert completion.body["choices"][0]["message"]["content"] == "four words of answer"


async def test_stream_gives_content_finish_and_usage(adapter: Any) -> None:
    provider, model, _sim = adapter
    chunks = await _collect(provider, model, _ask())
    assert "".join(c.content for c in chunks) == "four words of answer"
    assert any(c.finish_reason == "stop" for c in chunks)
    usage = [c.usage for c in chunks if c.usage is not None]
    assert usage and usage[-1].output_tokens > 0
    assert all(c.data.get("object") == "chat.completion.chunk" for c in chunks)


async def test_tool_calls(adapter: Any) -> None:
    provider, model, _sim = adapter
    body = _ask("what is the weather in Oslo?", tools=TOOLS)
    completion = await provider.complete(model, body, "key")
    assert completion.tool_calls == 1 and completion.finish_reason == "tool_calls"
    call = completion.body["choices"][0]["message"]["tool_calls"][0]
    assert call["function"]["name"] == "get_weather"
    assert '"Oslo"' in call["function"]["arguments"]
    chunks = await _collect(provider, model, body)
    assert any(c.tool_call for c in chunks)


@pytest.mark.parametrize(
    ("fault", "expected"),
    [
        ("server_error", FailureClass.SERVER_ERROR),
        ("overloaded", FailureClass.OVERLOADED),
        ("rate_limited", FailureClass.RATE_LIMITED),
        ("malformed_json", FailureClass.INVALID_RESPONSE),
        ("reset", FailureClass.SERVER_ERROR),
    ],
)
async def test_faults_classify_the_same_for_every_adapter(
    adapter: Any, fault: str, expected: FailureClass
) -> None:
    provider, model, sim = adapter
    for streamed in (False, True):
        sim.update_model("conf-model", script=[fault])
        with pytest.raises(UpstreamError) as info:
            if streamed:
                await _collect(provider, model, _ask())
            else:
                await provider.complete(model, _ask(), "key")
        failure = classify(info.value)
        assert failure.cls is expected, (streamed, info.value)
        if fault == "rate_limited":
            assert failure.retry_after_s == 2


async def test_context_length_and_auth(adapter: Any) -> None:
    provider, model, sim = adapter
    with pytest.raises(UpstreamError) as too_long:
        await provider.complete(model, _ask("word " * 20000), "key")
    assert classify(too_long.value).cls is FailureClass.CONTEXT_LENGTH
    sim.update_model("conf-model", script=[])
    sim.config.api_key = None  # keep the model; require a key from now on via a new sim
    async with Simulator({**SIM, "api_key": "right-key"}) as strict:
        guarded = _model(model.provider, strict)
        with pytest.raises(UpstreamError) as denied:
            await provider.complete(guarded, _ask(), "wrong-key")
        assert classify(denied.value).cls is FailureClass.AUTH
        ok = await provider.complete(guarded, _ask(), "right-key")
        assert ok.content == "four words of answer"


async def test_empty_answers_are_visible(adapter: Any) -> None:
    provider, model, sim = adapter
    sim.update_model("conf-model", script=["empty_content", "empty_content"])
    completion = await provider.complete(model, _ask(), "key")
    assert completion.is_empty
    chunks = await _collect(provider, model, _ask())
    assert not any(c.has_output for c in chunks)


async def test_a_cut_stream_is_an_error_not_an_ending(adapter: Any) -> None:
    provider, model, sim = adapter
    sim.update_model("conf-model", script=["disconnect_mid_stream"])
    seen: list[StreamChunk] = []
    with pytest.raises(UpstreamError) as info:
        async for chunk in provider.stream(model, _ask("a long answer please"), "key"):
            seen.append(chunk)
    assert classify(info.value).cls is FailureClass.SERVER_ERROR
    assert any(c.has_output for c in seen)  # content arrived before the cut
