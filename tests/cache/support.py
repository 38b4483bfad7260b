"""The policies the response-cache tests share: a cached route, an uncached one, and a cached
route that accepts sampled answers, on the simulator; and semantic routes."""

from __future__ import annotations

import importlib.util
import os

import pytest

from modelroute.policy.load import SEMANTIC_PACKAGES

INSTALL = "pip install 'modelroute[embed]'"

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


# Semantic caching (the embed extra): a loose and a strict threshold, and one that accepts
# sampled answers, all on the same model.
SEMANTIC_POLICY = """
version: semantic-cache-test
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
    capabilities: [tools, json_mode]
    latency: {p50_ms: 20, p95_ms: 50}
routes:
  semantic:
    strategy: {kind: fixed, models: [primary]}
    cache: {ttl: 10m, mode: semantic, similarity: 0.9}
  strict:
    strategy: {kind: fixed, models: [primary]}
    cache: {ttl: 10m, mode: semantic, similarity: 0.97}
  sampled:
    strategy: {kind: fixed, models: [primary]}
    cache: {ttl: 10m, mode: semantic, similarity: 0.9, allow_sampling: true}
"""


def needs_embed_extra() -> None:
    """Skip without the embed extra, but fail under CI=true (CI installs it: ``.ci/run``)."""
    missing = [p for p in SEMANTIC_PACKAGES if importlib.util.find_spec(p) is None]
    if missing:
        message = f"the embed extra is not installed ({', '.join(missing)}): " + INSTALL
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
