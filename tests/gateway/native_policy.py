"""The shared policy plus ``native``: a model whose upstream (the simulator's
``/v1/responses``) serves the Responses API, so a route of it forwards Responses requests as
sent while the other models are reached through the Chat Completions bridge."""

from __future__ import annotations

from .fixtures import POLICY

NATIVE_MODEL = """  native:
    provider: openai
    base_url: "{sim}"
    model_id: secondary-sim
    allow_floating: true
    prices: {input: 3.0, output: 6.0}
    context_window: 64000
    capabilities: [tools, json_mode, responses]
    latency: {p50_ms: 30, p95_ms: 80}
"""


def with_native(routes: str) -> str:
    """``POLICY`` with the ``native`` model, and ``routes`` (YAML entries under ``routes:``)
    before the shared policy's own."""
    return POLICY.replace("routes:\n", f"{NATIVE_MODEL}routes:\n{routes}")
