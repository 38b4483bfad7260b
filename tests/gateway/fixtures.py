"""The policy and simulated upstreams most gateway tests share, and the ``openai`` SDK client
they talk to the gateway with."""

from __future__ import annotations

from typing import Any

import openai

from .harness import Gateway

POLICY = """
version: test-1
defaults:
  timeouts: {attempt_ms: 2000, total_ms: 6000}
  retries: {max_attempts: 2, backoff_ms: 10, max_backoff_ms: 50}
models:
  primary:
    provider: simulator
    base_url: "{sim}"
    model_id: primary-sim
    allow_floating: true
    prices: {input: 1.0, output: 2.0, cached_input: 0.5}
    context_window: 4000
    capabilities: [tools, json_mode, logprobs]
    latency: {p50_ms: 20, p95_ms: 50}
    quality: {chat: 0.9, triage: 0.7}
  secondary:
    provider: openai
    base_url: "{sim}"
    model_id: secondary-sim
    allow_floating: true
    api_key: env:SIM_KEY
    prices: {input: 3.0, output: 6.0}
    context_window: 64000
    capabilities: [tools, json_mode, logprobs]
    latency: {p50_ms: 30, p95_ms: 80}
    quality: {chat: 0.95, triage: 0.95}
  claude:
    provider: anthropic
    base_url: "{sim_root}"
    model_id: claude-sim
    allow_floating: true
    prices: {input: 0.8, output: 4.0}
    context_window: 200000
    capabilities: [tools]
    latency: {p50_ms: 40, p95_ms: 90}
    quality: {chat: 0.9}
routes:
  chat:
    aliases: [assistant]
    strategy: {kind: fixed, models: [primary, secondary]}
    fallbacks: [claude]
  cheap-only:
    constraints: {max_cost_usd: 0.000001}
    strategy: {kind: fixed, models: [secondary]}
  triage:
    strategy:
      kind: cascade
      tiers: [[primary], [secondary]]
      confidence: {signal: logprobs, threshold: 0.6}
  hedged:
    hedge_after_ms: 100
    strategy: {kind: fixed, models: [primary, secondary]}
"""


def sim_config(**overrides: Any) -> dict[str, Any]:
    models: dict[str, Any] = {
        "primary-sim": {
            "reported_model": "primary-sim-2024-08-06",
            "system_fingerprint": "fp_primary",
            "context_window": 4000,
            "tokens_per_second": 2000,
            "answers": [
                {"match": "capital of france", "content": "Paris", "logprob": -0.05},
                {"match": "unsure", "content": "maybe", "logprob": -2.0},
                {
                    "match": "weather",
                    "content": "",
                    "tool_call": {"name": "get_weather", "arguments": {"city": "Paris"}},
                },
            ],
            "default_answer": "primary answer",
        },
        "secondary-sim": {
            "reported_model": "secondary-sim-2024-11-20",
            "system_fingerprint": "fp_secondary",
            "context_window": 64000,
            "tokens_per_second": 2000,
            "default_answer": "secondary answer",
        },
        "claude-sim": {
            "reported_model": "claude-sim-20241022",
            "context_window": 200000,
            "tokens_per_second": 2000,
            "default_answer": "claude answer",
        },
    }
    for name, changes in overrides.items():
        models[name] = {**models[name], **changes}
    return {"seed": 1, "models": models}


def ask(text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}], **extra}


def sdk_client(gw: Gateway, **options: Any) -> openai.AsyncOpenAI:
    """An ``openai`` SDK client for the gateway, closed when the gateway stops."""
    client = openai.AsyncOpenAI(
        base_url=gw.base_url, api_key="client-key", max_retries=0, **options
    )
    gw.closing(client)
    return client
