"""What clients see on the wire besides the answer: request ids, the ``model`` field, usage in
stream events, and error types, through the official SDKs and the real gateway."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from .fixtures import POLICY, sdk_client, sim_config
from .harness import Gateway, gateway

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def claude_client(gw: Gateway) -> anthropic.AsyncAnthropic:
    client = anthropic.AsyncAnthropic(base_url=gw.url, api_key="client-key", max_retries=0)
    gw.closing(client)
    return client


def _data_events(text: str) -> list[dict[str, Any]]:
    lines = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    return [orjson.loads(line) for line in lines if line != "[DONE]"]


# -- request ids -------------------------------------------------------------------------------


async def test_openai_sdk_reads_the_request_id_of_answers_streams_and_errors() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw, timeout=20)
        raw = await client.chat.completions.with_raw_response.create(
            model="chat", messages=MESSAGES
        )  # type: ignore[arg-type]
        ours = raw.headers["x-modelroute-request-id"]
        assert raw.parse()._request_id == ours
        gw.record(ours)
        stream = await client.chat.completions.create(model="chat", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        async for _ in stream:
            pass
        headers = stream.response.headers
        assert headers["x-request-id"] == headers["x-modelroute-request-id"]
        gw.record(headers["x-request-id"])
        with pytest.raises(openai.NotFoundError) as caught:
            await client.chat.completions.create(model="nope", messages=MESSAGES)  # type: ignore[arg-type]
        assert caught.value.request_id == caught.value.response.headers["x-modelroute-request-id"]
        gw.record(caught.value.request_id)


async def test_anthropic_sdk_reads_the_request_id_of_answers_streams_and_errors() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = claude_client(gw)
        raw = await client.messages.with_raw_response.create(
            model="chat", max_tokens=64, messages=MESSAGES
        )  # type: ignore[arg-type]
        assert (await raw.parse())._request_id == raw.headers["x-modelroute-request-id"]
        async with client.messages.stream(model="chat", max_tokens=64, messages=MESSAGES) as stream:  # type: ignore[arg-type]
            await stream.get_final_message()
        assert stream.request_id is not None
        assert stream.request_id == stream.response.headers["x-modelroute-request-id"]
        gw.record(stream.request_id)
        with pytest.raises(anthropic.NotFoundError) as caught:
            await client.messages.create(model="nope", max_tokens=64, messages=MESSAGES)  # type: ignore[arg-type]
        assert caught.value.request_id is not None
        gw.record(caught.value.request_id)


async def test_every_response_has_a_request_id() -> None:
    async with gateway(POLICY, sim_config()) as gw, httpx.AsyncClient(timeout=10) as http:
        bad = await http.post(f"{gw.base_url}/chat/completions", content=b"{not json")
        assert bad.status_code == 400
        assert bad.headers["x-request-id"] == bad.headers["x-modelroute-request-id"]
        assert bad.headers["request-id"] == bad.headers["x-modelroute-request-id"]
        for path in ("/v1/models", "/healthz", "/v1/nowhere"):
            response = await http.get(f"{gw.url}{path}")
            assert response.headers["x-request-id"], path
            assert response.headers["request-id"] == response.headers["x-request-id"], path
        ids = {(await http.get(f"{gw.url}/healthz")).headers["x-request-id"] for _ in range(3)}
        assert len(ids) == 3  # a fresh id per response, not a constant


# -- usage -------------------------------------------------------------------------------------


async def test_stream_chunks_have_no_usage_field_unless_the_client_asked() -> None:
    body = {"model": "chat", "messages": MESSAGES, "stream": True}
    async with gateway(POLICY, sim_config()) as gw, httpx.AsyncClient(timeout=10) as http:
        plain = await http.post(f"{gw.base_url}/chat/completions", json=body)
        asked = await http.post(
            f"{gw.base_url}/chat/completions",
            json={**body, "stream_options": {"include_usage": True}},
        )
    chunks = _data_events(plain.text)
    assert chunks and not [c for c in chunks if "usage" in c]  # absent, as OpenAI sends them
    with_usage = _data_events(asked.text)
    assert all("usage" in c for c in with_usage)
    assert [c["usage"] is not None for c in with_usage][-2:] == [False, True]


@pytest.mark.parametrize(("model", "upstream"), [("primary", "openai"), ("claude", "anthropic")])
async def test_message_start_reports_the_prompt_tokens(model: str, upstream: str) -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = claude_client(gw)
        async with client.messages.stream(model=model, max_tokens=64, messages=MESSAGES) as stream:  # type: ignore[arg-type]
            start = None
            async for event in stream:
                if event.type == "message_start":
                    start = event.message.usage
            final = await stream.get_final_message()
    assert start is not None and start.input_tokens > 0
    if upstream == "anthropic":  # the upstream's own count, known from its message_start
        assert start.input_tokens == final.usage.input_tokens
    else:  # estimated offline until the upstream's usage arrives at the end
        record = gw.record(stream.response.headers["x-modelroute-request-id"])
        assert record.decision is not None
        assert start.input_tokens == record.decision["prompt_tokens"]


# -- errors ------------------------------------------------------------------------------------

HANGING = """
version: hang-1
defaults:
  timeouts: {attempt_ms: 150, total_ms: 400}
  retries: {max_attempts: 1}
models:
  stuck:
    provider: anthropic
    base_url: "{sim_root}"
    model_id: stuck-sim
    allow_floating: true
    prices: {input: 1.0, output: 1.0}
    context_window: 8000
    latency: {p50_ms: 20, p95_ms: 50}
routes:
  slow:
    strategy: {kind: fixed, models: [stuck]}
"""


@pytest.mark.parametrize("stream", [False, True])
async def test_a_timeout_is_a_timeout_error_at_the_anthropic_door(stream: bool) -> None:
    sim = {"models": {"stuck-sim": {"faults": {"hang": 1.0}}}}
    async with gateway(HANGING, sim) as gw, httpx.AsyncClient(timeout=10) as http:
        body = {"model": "slow", "max_tokens": 16, "messages": MESSAGES, "stream": stream}
        response = await http.post(
            f"{gw.url}/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"}
        )
    assert response.status_code == 504
    assert response.json()["type"] == "error"
    assert response.json()["error"]["type"] == "timeout_error"


# -- the model field ---------------------------------------------------------------------------


async def test_both_doors_name_the_model_the_provider_reported() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        claude = claude_client(gw)
        raw = await claude.messages.with_raw_response.create(
            model="chat", max_tokens=64, messages=MESSAGES
        )  # type: ignore[arg-type]
        assert (await raw.parse()).model == "primary-sim-2024-08-06"
        assert raw.headers["x-modelroute-route"] == "chat"
        assert raw.headers["x-modelroute-model"] == "primary"
        async with claude.messages.stream(
            model="claude", max_tokens=64, messages=MESSAGES
        ) as stream:  # type: ignore[arg-type]
            started = [e.message.model async for e in stream if e.type == "message_start"]
        assert started == ["claude-sim-20241022"]
        chat = sdk_client(gw, timeout=20)
        completion = await chat.chat.completions.create(model="chat", messages=MESSAGES)  # type: ignore[arg-type]
        assert completion.model == "primary-sim-2024-08-06"
        chunks = await chat.chat.completions.create(model="claude", messages=MESSAGES, stream=True)  # type: ignore[arg-type]
        assert {c.model async for c in chunks} == {"claude-sim-20241022"}
