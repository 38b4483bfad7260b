"""Shared parts of the fault-matrix tests: the policy, the simulator set-up, and helpers
that send a request and read back what the client got and what the record says."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from modelroute.records.record import RequestRecord

from .fixtures import sdk_client, sim_config
from .harness import Gateway

POLICY = """
version: faults-1
defaults:
  timeouts: {attempt_ms: 1500, total_ms: 4000}
  retries: {max_attempts: 2, backoff_ms: 5, max_backoff_ms: 20}
models:
  primary:
    provider: simulator
    base_url: "{sim}"
    model_id: primary-sim
    allow_floating: true
    prices: {input: 1.0, output: 2.0}
    context_window: 4000
    capabilities: [logprobs]
    latency: {p50_ms: 20, p95_ms: 50}
  mid:
    provider: simulator
    base_url: "{sim}"
    model_id: mid-sim
    allow_floating: true
    prices: {input: 1.0, output: 2.0}
    context_window: 2000
    latency: {p50_ms: 20, p95_ms: 50}
  secondary:
    provider: openai
    base_url: "{sim}"
    model_id: secondary-sim
    allow_floating: true
    prices: {input: 3.0, output: 6.0}
    context_window: 64000
    capabilities: [logprobs]
    latency: {p50_ms: 30, p95_ms: 80}
  claude:
    provider: anthropic
    base_url: "{sim_root}"
    model_id: claude-sim
    allow_floating: true
    prices: {input: 0.8, output: 4.0}
    context_window: 200000
    latency: {p50_ms: 40, p95_ms: 90}
routes:
  chat:
    strategy: {kind: fixed, models: [primary, secondary]}
  claude-first:
    strategy: {kind: fixed, models: [claude, secondary]}
  everything:
    strategy: {kind: fixed, models: [primary, secondary]}
    fallbacks: [claude]
  once:
    retries: {max_attempts: 1}
    strategy: {kind: fixed, models: [primary, secondary]}
  quick:
    retries: {max_attempts: 1}
    timeouts: {attempt_ms: 250, total_ms: 3000}
    strategy: {kind: fixed, models: [primary, secondary]}
  tight:
    retries: {max_attempts: 1}
    timeouts: {attempt_ms: 250, total_ms: 400}
    strategy: {kind: fixed, models: [primary, secondary]}
  patient:
    retries: {max_attempts: 2, backoff_ms: 5, max_backoff_ms: 10, on: [rate_limited]}
    timeouts: {attempt_ms: 1000, total_ms: 3000}
    strategy: {kind: fixed, models: [primary, secondary]}
  impatient:
    retries: {max_attempts: 2, backoff_ms: 5, max_backoff_ms: 10, on: [rate_limited]}
    timeouts: {attempt_ms: 600, total_ms: 600}
    strategy: {kind: fixed, models: [primary, secondary]}
  long:
    strategy: {kind: fixed, models: [primary, mid, secondary]}
  late-switch:
    retries: {max_attempts: 1}
    timeouts: {attempt_ms: 300, total_ms: 3000}
    strategy: {kind: fixed, models: [mid, primary, secondary]}
  hedged:
    hedge_after_ms: 100
    retries: {max_attempts: 1}
    strategy: {kind: fixed, models: [primary, secondary]}
  triage:
    strategy:
      kind: cascade
      tiers: [[primary], [secondary]]
      confidence: {signal: logprobs, threshold: 0.6}
"""

FRANCE = "What is the capital of France?"  # primary answers "Paris" (one token)
STORY = "Tell me a story."  # the default answers
LONG_STORY = "one two three four five six seven eight"


def scripted_sim(**overrides: dict[str, Any]) -> dict[str, Any]:
    """The shared simulated upstreams plus ``mid-sim``; each override is merged into one
    model's config."""
    config = sim_config()
    config["models"]["mid-sim"] = {"context_window": 2000, "default_answer": "mid answer"}
    for name, changes in overrides.items():
        config["models"][name] = {**config["models"][name], **changes}
    return config


def user_messages(text: str) -> Any:
    return [{"role": "user", "content": text}]


def trail(record: RequestRecord) -> list[tuple[str, str, str | None]]:
    """(model, outcome, failure class) of every attempt, in order."""
    return [(a.model, a.outcome, a.failure) for a in record.attempts]


def body_trail(error: openai.APIStatusError) -> list[tuple[str, str, str | None]]:
    assert isinstance(error.body, dict), error.body
    return [(a["model"], a["outcome"], a["failure"]) for a in error.body["attempts"]]


async def ask(
    gw: Gateway, route: str, text: str = FRANCE, *, stream: bool = False, **extra: Any
) -> tuple[str, RequestRecord, httpx.Headers]:
    """One request through the SDK: the answer text, its record and the response headers.
    A streamed answer is read to its end."""
    client = sdk_client(gw)
    if not stream:
        raw = await client.chat.completions.with_raw_response.create(
            model=route, messages=user_messages(text), **extra
        )
        completion = raw.parse()
        content = completion.choices[0].message.content or ""
    else:
        raw = await client.chat.completions.with_raw_response.create(
            model=route, messages=user_messages(text), stream=True, **extra
        )
        content = ""
        async for chunk in raw.parse():
            if chunk.choices:
                content += chunk.choices[0].delta.content or ""
    return content, gw.record(raw.headers["x-modelroute-request-id"]), raw.headers


async def fail(
    gw: Gateway, route: str, text: str = FRANCE, *, stream: bool = False, **extra: Any
) -> tuple[openai.APIStatusError, RequestRecord]:
    """A request that must fail before its first byte: the SDK's error and the record."""
    client = sdk_client(gw)
    with pytest.raises(openai.APIStatusError) as caught:
        await client.chat.completions.create(
            model=route, messages=user_messages(text), stream=stream, **extra
        )
    error = caught.value
    record = gw.record(error.response.headers["x-modelroute-request-id"])
    assert record.http_status == error.status_code  # the record says what the client got
    return error, record


def one_record_each(gw: Gateway, requests: int) -> None:
    records = gw.records()
    assert len(records) == requests
    assert len({r.request_id for r in records}) == requests
