"""Model listing and lookup in both APIs' shapes, and Anthropic's token counting, through the
official SDKs and the real gateway."""

from __future__ import annotations

import datetime

import anthropic
import httpx
import openai
import pytest

from .fixtures import POLICY, sdk_client, sim_config
from .harness import Gateway, gateway

NAMES = ["chat", "cheap-only", "triage", "hedged", "assistant", "primary", "secondary", "claude"]
MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


def claude_client(gw: Gateway) -> anthropic.AsyncAnthropic:
    client = anthropic.AsyncAnthropic(base_url=gw.url, api_key="client-key", max_retries=0)
    gw.closing(client)
    return client


async def test_openai_sdk_retrieves_one_model() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw, timeout=20)
        listed = {m.id: m for m in (await client.models.list()).data}
        route = await client.models.retrieve("assistant")
        assert route.id == "assistant" and route.object == "model"
        assert route == listed["assistant"]
        model = await client.models.retrieve("claude")
        assert model.owned_by == "anthropic" and model == listed["claude"]
        with pytest.raises(openai.NotFoundError) as caught:
            await client.models.retrieve("nope")
        error = caught.value.body
        assert isinstance(error, dict) and error["code"] == "model_not_found"
        assert error["type"] == "invalid_request_error" and "nope" in error["message"]


async def test_anthropic_sdk_lists_and_retrieves_models_in_its_shape() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = claude_client(gw)
        page = await client.models.list()
        assert [m.id for m in page.data] == NAMES
        assert (page.first_id, page.last_id, page.has_more) == (NAMES[0], NAMES[-1], False)
        for info in page.data:
            assert info.type == "model" and info.display_name
            assert isinstance(info.created_at, datetime.datetime)
        # The SDK pages on by after_id while has_more says so.
        assert [m.id async for m in await client.models.list(limit=3)] == NAMES
        first = await client.models.list(limit=3)
        assert [m.id for m in first.data] == NAMES[:3] and first.has_more
        before = await client.models.list(before_id="primary", limit=2)
        assert [m.id for m in before.data] == ["hedged", "assistant"]
        claude = await client.models.retrieve("claude")
        assert claude.id == "claude" and claude.type == "model"
        with pytest.raises(anthropic.NotFoundError) as caught:
            await client.models.retrieve("nope")
        assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
        with pytest.raises(anthropic.BadRequestError):
            await client.models.list(limit=0)


async def test_anthropic_sdk_counts_tokens_as_the_router_estimates_them() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = claude_client(gw)
        tools = [
            {
                "name": "get_weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
            }
        ]
        request = {"model": "chat", "system": "Be terse.", "messages": MESSAGES, "tools": tools}
        counted = await client.messages.count_tokens(**request)  # type: ignore[arg-type]
        raw = await client.messages.with_raw_response.create(max_tokens=64, **request)  # type: ignore[arg-type]
        record = gw.record(raw.headers["x-modelroute-request-id"])
        assert record.decision is not None
        assert counted.input_tokens == record.decision["prompt_tokens"] > 0
        shorter = await client.messages.count_tokens(model="chat", messages=MESSAGES)  # type: ignore[arg-type]
        assert 0 < shorter.input_tokens < counted.input_tokens
        with pytest.raises(anthropic.NotFoundError):
            await client.messages.count_tokens(model="nope", messages=MESSAGES)  # type: ignore[arg-type]
        with pytest.raises(anthropic.BadRequestError) as caught:
            await client.messages.count_tokens(model="chat", messages=[])
        assert caught.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


async def test_unknown_paths_and_methods_answer_in_the_callers_format() -> None:
    async with gateway(POLICY, sim_config()) as gw, httpx.AsyncClient(timeout=10) as http:
        wrong = await http.post(f"{gw.url}/v1/models/chat")
        assert wrong.status_code == 405 and wrong.headers["allow"] == "GET"
        assert wrong.json()["error"]["type"] == "invalid_request_error"
        nowhere = await http.get(f"{gw.url}/v1/messages/batches")
        assert nowhere.status_code == 404
        assert nowhere.json()["error"]["type"] == "not_found_error"
        asked = await http.get(f"{gw.url}/v1/nowhere", headers={"anthropic-version": "2023-06-01"})
        assert asked.status_code == 404 and asked.json()["type"] == "error"
