"""The OpenAI-compatible front door, through the official ``openai`` SDK over real sockets."""

from __future__ import annotations

import httpx
import openai
import pytest

from .fixtures import POLICY, sdk_client, sim_config
from .harness import gateway

MESSAGES = [{"role": "user", "content": "What is the capital of France?"}]


async def test_plain_completion_with_routing_headers() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw, timeout=20)
        raw = await client.chat.completions.with_raw_response.create(
            model="chat", messages=MESSAGES
        )  # type: ignore[arg-type]
        completion = raw.parse()
        assert completion.choices[0].message.content == "Paris"
        assert completion.model == "primary-sim-2024-08-06"
        assert completion.usage is not None and completion.usage.completion_tokens > 0
        h = raw.headers
        assert h["x-modelroute-route"] == "chat"
        assert h["x-modelroute-model"] == "primary"
        assert h["x-modelroute-model-version"] == "primary-sim-2024-08-06"
        assert h["x-modelroute-attempts"] == "1"
        assert "fixed/declared_order" in h["x-modelroute-reason"]
        record = gw.record(h["x-modelroute-request-id"])
        assert record.final_model == "primary" and record.status == "ok"
        assert record.final_fingerprint == "fp_primary"
        assert record.cost_usd > 0
        assert record.client_key_id and "client-key" not in record.client_key_id


async def test_alias_and_task_header_select_the_route() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw, timeout=20)
        raw = await client.chat.completions.with_raw_response.create(
            model="assistant", messages=MESSAGES
        )  # type: ignore[arg-type]
        assert raw.headers["x-modelroute-route"] == "chat"
        raw = await client.chat.completions.with_raw_response.create(
            model="whatever",
            messages=MESSAGES,  # type: ignore[arg-type]
            extra_headers={"x-modelroute-task": "chat"},
        )
        assert raw.headers["x-modelroute-route"] == "chat"


async def test_a_concrete_model_bypasses_routing_but_is_recorded() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw, timeout=20)
        raw = await client.chat.completions.with_raw_response.create(
            model="secondary", messages=MESSAGES
        )  # type: ignore[arg-type]
        assert raw.parse().choices[0].message.content == "secondary answer"
        record = gw.record(raw.headers["x-modelroute-request-id"])
        assert record.final_model == "secondary" and record.selected_by == "model"
        assert record.decision is not None and record.decision["strategy"] == "direct"


async def test_streaming_through_the_sdk() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw, timeout=20)
        stream = await client.chat.completions.create(
            model="chat",
            messages=MESSAGES,
            stream=True,  # type: ignore[arg-type]
            stream_options={"include_usage": True},
        )
        text, usage = "", None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            if chunk.usage:
                usage = chunk.usage
        assert text == "Paris"
        assert usage is not None and usage.completion_tokens >= 1
        [record] = gw.records()
        assert record.streamed and record.status == "ok" and record.answer == "Paris"
        assert record.ttft_ms is not None and record.usage is not None


async def test_usage_chunk_is_not_sent_unless_asked() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"{gw.base_url}/chat/completions",
                json={"model": "chat", "messages": MESSAGES, "stream": True},
            )
        events = [line for line in response.text.splitlines() if line.startswith("data: ")]
        assert events[-1] == "data: [DONE]"
        assert not any('"usage":{' in e and '"choices":[]' in e for e in events)
        [record] = gw.records()
        assert record.usage is not None  # we still asked upstream for it, for accounting


async def test_tool_calls_pass_through() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw, timeout=20)
        completion = await client.chat.completions.create(
            model="chat",
            tools=tools,  # type: ignore[arg-type]
            messages=[{"role": "user", "content": "What is the weather in Paris?"}],
        )
        call = completion.choices[0].message.tool_calls
        assert call and call[0].function.name == "get_weather"  # type: ignore[union-attr]
        assert completion.choices[0].finish_reason == "tool_calls"


async def test_errors_surface_as_sdk_exceptions() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        client = sdk_client(gw, timeout=20)
        with pytest.raises(openai.NotFoundError) as not_found:
            await client.chat.completions.create(model="nope", messages=MESSAGES)  # type: ignore[arg-type]
        assert "available routes and aliases" in str(not_found.value)
        with pytest.raises(openai.UnprocessableEntityError) as infeasible:
            await client.chat.completions.create(model="cheap-only", messages=MESSAGES)  # type: ignore[arg-type]
        body = infeasible.value.body
        assert isinstance(body, dict)
        assert body["rejections"][0]["reason"] == "over_cost_ceiling"
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="chat", messages=[])
        assert len(gw.records()) == 3
        assert {r.http_status for r in gw.records()} == {404, 422, 400}


async def test_malformed_bodies_get_openai_errors_and_records() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        async with httpx.AsyncClient(timeout=10) as http:
            url = f"{gw.base_url}/chat/completions"
            broken = await http.post(
                url, content=b"{not json", headers={"content-type": "application/json"}
            )
            not_object = await http.post(url, json=[1, 2])
            bad_limit = await http.post(
                url,
                json={"model": "chat", "messages": MESSAGES},
                headers={"x-modelroute-max-cost-usd": "lots"},
            )
            wrong_method = await http.get(url)
        for response in (broken, not_object, bad_limit):
            assert response.status_code == 400
            error = response.json()["error"]
            assert error["message"] and error["type"] == "invalid_request_error"
            assert "x-modelroute-request-id" in response.headers
        assert wrong_method.status_code == 405
        assert len(gw.records()) == 3


async def test_per_request_limit_headers_only_tighten() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"{gw.base_url}/chat/completions",
                json={"model": "chat", "messages": MESSAGES},
                headers={"x-modelroute-max-cost-usd": "0.0000001"},
            )
        assert response.status_code == 422
        rejected = {r["model"] for r in response.json()["error"]["rejections"]}
        assert rejected == {"primary", "secondary", "claude"}


async def test_models_health_and_ready() -> None:
    async with gateway(POLICY, sim_config()) as gw:
        async with httpx.AsyncClient(timeout=10) as http:
            models = (await http.get(f"{gw.base_url}/models")).json()
            health = await http.get(f"{gw.url}/healthz")
            ready = (await http.get(f"{gw.url}/readyz")).json()
        ids = {m["id"] for m in models["data"]}
        assert {"chat", "assistant", "triage", "primary", "claude"} <= ids
        assert health.status_code == 200
        assert ready["policy_hash"] == gw.router.policy.hash


def test_library_router_sync_and_async_paths() -> None:
    import asyncio

    from modelroute import load_policy_text
    from modelroute.router import Router
    from modelroute.testing import Simulator

    async def start() -> Simulator:
        sim = Simulator(sim_config())
        await sim.start()
        return sim

    loop = asyncio.new_event_loop()
    sim = loop.run_until_complete(start())
    try:
        text = POLICY.replace("{sim}", sim.openai_base_url).replace("{sim_root}", sim.base_url)
        router = Router(load_policy_text(text), api_keys={})
        # The simulator runs on its own loop in a thread so the sync API can block this one.
        import threading

        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        result = router.chat_sync({"model": "chat", "messages": MESSAGES})
        assert result.completion.content == "Paris"
        assert result.record.final_model == "primary"
        assert result.headers["x-modelroute-route"] == "chat"
        router.close()
    finally:
        asyncio.run_coroutine_threadsafe(sim.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
