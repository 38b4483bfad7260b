"""The policy the response-cache tests share: a cached route, an uncached one, and a cached
route that accepts sampled answers, on the simulator."""

from __future__ import annotations

CACHED_POLICY = """
version: cache-test
defaults:
  timeouts: {attempt_ms: 2000, total_ms: 6000}
  retries: {max_attempts: 1}
models:
  primary:
    provider: simulator
    base_url: "{sim}"
    model_id: primary-sim
    allow_floating: true
    prices: {input: 1.0, output: 2.0}
    context_window: 4000
    capabilities: [tools, json_mode, logprobs]
    latency: {p50_ms: 20, p95_ms: 50}
  secondary:
    provider: openai
    base_url: "{sim}"
    model_id: secondary-sim
    allow_floating: true
    prices: {input: 3.0, output: 6.0}
    context_window: 64000
    capabilities: [tools]
    latency: {p50_ms: 30, p95_ms: 80}
routes:
  cached:
    strategy: {kind: fixed, models: [primary]}
    cache: {ttl: 10m}
  sampled:
    strategy: {kind: fixed, models: [secondary]}
    cache: {ttl: 90s, allow_sampling: true}
  plain:
    strategy: {kind: fixed, models: [primary]}
"""


def ask(text: str = "What is the capital of France?", **extra: object) -> dict[str, object]:
    return {"messages": [{"role": "user", "content": text}], **extra}
