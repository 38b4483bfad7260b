"""A real llama.cpp server (llama-cpp-python) with the tiny stories260K model as one upstream.

Runs when ``llama_cpp`` is installed (``pip install 'llama-cpp-python[server]'``; CI installs
it); under ``CI=true`` a missing install fails instead of skipping.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from .harness import free_port, serve_router

# ../shared beside the checkout; MODELROUTE_LLAMA_MODEL names the file elsewhere.
MODEL = Path(
    os.environ.get("MODELROUTE_LLAMA_MODEL")
    or Path(__file__).resolve().parents[3] / "shared" / "models" / "stories260K.gguf"
)
HAVE_LLAMA = importlib.util.find_spec("llama_cpp") is not None

pytestmark = [pytest.mark.llama]
if not HAVE_LLAMA and os.environ.get("CI") != "true":
    pytestmark.append(pytest.mark.skip(reason="llama-cpp-python[server] is not installed"))

POLICY = """
version: llama-test
models:
  stories:
    provider: openai
    base_url: "{llama}/v1"
    model_id: stories260k
    allow_floating: true
    prices: {input: 0, output: 0}
    context_window: 512
    capabilities: [logprobs]
    latency: {p50_ms: 50, p95_ms: 200}
routes:
  story:
    strategy: {kind: fixed, models: [stories]}
  story-cascade:
    strategy:
      kind: cascade
      tiers: [[stories], [stories-again]]
      confidence: {signal: logprobs, threshold: 0.99}
  story-confident:
    strategy:
      kind: cascade
      tiers: [[stories], [stories-again]]
      confidence: {signal: logprobs, threshold: 0.01}
"""
SECOND = """
  stories-again:
    provider: openai
    base_url: "{llama}/v1"
    model_id: stories260k
    allow_floating: true
    prices: {input: 0, output: 0}
    context_window: 512
    capabilities: [logprobs]
    latency: {p50_ms: 50, p95_ms: 200}
"""


@contextlib.contextmanager
def llama_server() -> Iterator[str]:
    if not HAVE_LLAMA:
        pytest.fail("CI=true and llama-cpp-python[server] is not installed")
    assert MODEL.exists(), MODEL
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "llama_cpp.server",
            "--model",
            str(MODEL),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--n_ctx",
            "512",
            "--model_alias",
            "stories260k",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/v1/models", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("llama.cpp server did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(15)


@pytest.fixture(scope="module")
def llama() -> Iterator[str]:
    with llama_server() as url:
        yield url


def _router(llama_url: str):  # type: ignore[no-untyped-def]
    from modelroute import load_policy_text
    from modelroute.records.record import MemorySink
    from modelroute.router import Router

    text = POLICY.replace("routes:", SECOND.strip("\n") + "\nroutes:", 1)
    text = text.replace("{llama}", llama_url)
    sink = MemorySink()
    return Router(load_policy_text(text), api_keys={}, sink=sink), sink


GREEDY = {"temperature": 0, "max_tokens": 30, "extra_body": {"repeat_penalty": 1.0}}


async def test_completion_with_logprobs_through_the_gateway(llama: str) -> None:
    router, sink = _router(llama)
    async with serve_router(router) as url:
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        try:
            raw = await client.chat.completions.with_raw_response.create(
                model="story",
                messages=[{"role": "user", "content": "Once upon a time"}],
                logprobs=True,
                top_logprobs=2,
                **GREEDY,
            )  # type: ignore[arg-type]
        finally:
            await client.close()
    completion = raw.parse()
    text = completion.choices[0].message.content or ""
    assert "Lily" in text  # the model's greedy continuation of "Once upon a time"
    logprobs = completion.choices[0].logprobs
    assert logprobs is not None and logprobs.content
    assert all(item.logprob <= 0 for item in logprobs.content)
    assert raw.headers["x-modelroute-model"] == "stories"
    [record] = sink.records
    assert record.usage is not None and record.usage.output_tokens > 0
    assert record.cost_usd == 0.0


async def test_streaming_from_llama(llama: str) -> None:
    router, sink = _router(llama)
    async with serve_router(router) as url:
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0)
        try:
            stream = await client.chat.completions.create(
                model="story",
                messages=[{"role": "user", "content": "Once upon a time"}],
                stream=True,
                **GREEDY,
            )  # type: ignore[arg-type]
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        finally:
            await client.close()
    assert "Lily" in text
    [record] = sink.records
    assert record.streamed and record.status == "ok" and record.ttft_ms is not None


async def test_cascade_confidence_from_real_logprobs(llama: str) -> None:
    router, _sink = _router(llama)
    body = {
        "messages": [{"role": "user", "content": "Once upon a time"}],
        "temperature": 0,
        "max_tokens": 20,
        "repeat_penalty": 1.0,
    }
    doubtful = await router.chat({**body, "model": "story-cascade"})
    confident = await router.chat({**body, "model": "story-confident"})
    await router.aclose()
    # A tiny model is never 99% sure of every token: the strict route escalates...
    assert doubtful.record.escalations == 1
    assert doubtful.record.attempts[0].outcome == "low_confidence"
    assert 0 < (doubtful.record.attempts[0].confidence or 0) < 0.99
    assert doubtful.record.final_model == "stories-again"
    # ...and the lenient one accepts the first answer, with its measured confidence.
    assert confident.record.escalations == 0 and confident.record.final_model == "stories"
    assert confident.record.confidence is not None and confident.record.confidence > 0.01
    # The client did not ask for logprobs; the ones the cascade needed are not passed on.
    assert confident.completion.body["choices"][0].get("logprobs") is None
