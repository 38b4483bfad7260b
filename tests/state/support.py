"""A policy with limits, the router over ``ScriptedProvider`` with counters on a fake clock."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import Any

from modelroute import load_policy_text
from modelroute.records.record import MemorySink
from modelroute.router import Router
from modelroute.state.admission import Admission
from modelroute.state.limits import Counters, MemoryCounters
from modelroute.state.shared_sync import SyncLoop
from modelroute.testing import ScriptedProvider

# A fixed day (2025-03-14 12:00 UTC): budgets are counted per UTC day or month.
NOON = 1_741_953_600.0


class FakeClock:
    def __init__(self, now: float = NOON) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# One model's settings, for a policy's ``models:`` (format with the model's ``name``).
MODEL = """
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model_id: {name}-v1
    allow_floating: true
    prices: {{input: 1.0, output: 2.0}}
    context_window: 100000
    latency: {{p50_ms: 20, p95_ms: 50}}"""

MODELS = """
models:
  cheap:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model_id: cheap-v1
    allow_floating: true
    prices: {input: 1.0, output: 2.0}
    context_window: 100000
    latency: {p50_ms: 20, p95_ms: 50}
    quality: {paid: 0.8, degradable: 0.8, floored: 0.6}
  dear:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model_id: dear-v1
    allow_floating: true
    prices: {input: 30.0, output: 60.0}
    context_window: 100000
    latency: {p50_ms: 20, p95_ms: 50}
    quality: {paid: 0.9, degradable: 0.9, floored: 0.9}
"""

ROUTES = """
routes:
  limited:
    rate_limit: {requests_per_minute: 3, tokens_per_minute: 100000}
    strategy: {kind: fixed, models: [cheap]}
  shared:
    rate_limit: {requests_per_minute: 2, per: route}
    strategy: {kind: fixed, models: [cheap]}
  tokens:
    rate_limit: {tokens_per_minute: 1000}
    output_tokens: 400
    strategy: {kind: fixed, models: [cheap]}
  paid:
    budget: {usd: 0.05, period: day}
    output_tokens: 256
    strategy: {kind: fixed, models: [dear, cheap]}
  degradable:
    budget: {usd: 0.05, period: month}
    on_budget: degrade
    output_tokens: 256
    strategy: {kind: fixed, models: [dear, cheap]}
  floored:
    budget: {usd: 0.05}
    on_budget: degrade
    constraints: {min_quality: 0.7}
    output_tokens: 256
    strategy: {kind: fixed, models: [dear, cheap]}
  keyed:
    budget: {usd: 0.02, per: key}
    output_tokens: 256
    strategy: {kind: fixed, models: [dear]}
  strict:
    budget: {usd: 1.0, when_state_down: closed}
    rate_limit: {requests_per_minute: 100, when_state_down: closed}
    strategy: {kind: fixed, models: [cheap]}
  lenient:
    budget: {usd: 1.0, when_state_down: open}
    rate_limit: {requests_per_minute: 100}
    strategy: {kind: fixed, models: [cheap]}
"""

POLICY = "version: limits\n" + MODELS + ROUTES


def make_router(
    provider: ScriptedProvider,
    counters: Counters | None = None,
    clock: FakeClock | None = None,
    **kwargs: Any,
) -> Router:
    clock = clock or FakeClock()
    counters = counters if counters is not None else MemoryCounters(clock)
    return Router(
        load_policy_text(POLICY, "limits.yaml"),
        providers={"openai": provider},
        rng=random.Random(1),
        api_keys={},
        sink=MemorySink(),
        limits=Admission(counters, clock=clock, **kwargs),
    )


def body(route: str, text: str = "hello", **extra: Any) -> dict[str, Any]:
    return {"model": route, "messages": [{"role": "user", "content": text}], **extra}


def key(name: str) -> dict[str, str]:
    return {"authorization": f"Bearer {name}"}


async def assert_closing_ends_despite_a_swallowed_cancellation(
    shared: SyncLoop, close: Callable[[], Awaitable[None]]
) -> None:
    """Seen once with a real client: a cancelled command raised a connection error instead
    of the cancellation, the loop took it for Redis being away, and shutdown waited on."""
    entered = asyncio.Event()
    calls = 0

    async def swallowing(fresh: bool = True) -> None:
        nonlocal calls
        calls += 1
        if calls > 1:
            return  # the last write, on the way out
        entered.set()
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise ConnectionError("Connection closed by server") from None

    shared.sync = swallowing  # type: ignore[method-assign]
    await shared.start()
    await entered.wait()
    closing = asyncio.ensure_future(close())
    done, _ = await asyncio.wait({closing}, timeout=30)  # turns a hang into a failure
    assert closing in done
    assert shared.errors == 1
