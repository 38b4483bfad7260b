"""Connection-level faults of the simulator: resets, disconnects mid-stream, error events in a
stream, hangs and slow answers, seen from raw sockets, httpx and the SDKs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest

from modelroute.testing import Simulator

from .simulator_support import FRANCE, an_body, oa_body


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
