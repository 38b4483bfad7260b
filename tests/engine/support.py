"""The engine matrix's shared policy and helpers: the real router, planner, engine and
breakers over ``ScriptedProvider``, on the virtual-time loop (conftest.py). Every timing is
exact: the record's clock is the loop's."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest

from modelroute import AllAttemptsFailed, ModelrouteError, StreamFailed, load_policy_text
from modelroute.records.record import MemorySink, RequestRecord
from modelroute.router import ChatStream, Router
from modelroute.testing import ScriptedProvider

SEED = 7  # the router's jitter; ``jitter`` replays the same draws

MODEL = """
  {name}:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model_id: {name}-v1
    allow_floating: true
    prices: {{input: 1.0, output: 2.0}}
    context_window: {window}
    capabilities: [logprobs]
    latency: {{p50_ms: 20, p95_ms: 50}}"""
WINDOWS = {"primary": 4000, "mid": 2000, "secondary": 64000, "third": 200000}

ROUTES = """
routes:
  chat:
    strategy: {kind: fixed, models: [primary, secondary]}
  everything:
    strategy: {kind: fixed, models: [primary, secondary, third]}
  once:
    retries: {max_attempts: 1}
    strategy: {kind: fixed, models: [primary, secondary]}
  patient:
    retries: {max_attempts: 2, backoff_ms: 100, max_backoff_ms: 100, on: [rate_limited]}
    timeouts: {attempt_ms: 1000, total_ms: 3000}
    strategy: {kind: fixed, models: [primary, secondary]}
  impatient:
    retries: {max_attempts: 2, backoff_ms: 100, max_backoff_ms: 100, on: [rate_limited]}
    timeouts: {attempt_ms: 600, total_ms: 600}
    strategy: {kind: fixed, models: [primary, secondary]}
  quick:
    retries: {max_attempts: 1}
    timeouts: {attempt_ms: 250, total_ms: 3000}
    strategy: {kind: fixed, models: [primary, secondary]}
  tight:
    retries: {max_attempts: 1}
    timeouts: {attempt_ms: 250, total_ms: 400}
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
    strategy: {kind: fixed, models: [primary, secondary, third]}
  triage:
    strategy:
      kind: cascade
      tiers: [[primary], [secondary]]
      confidence: {signal: logprobs, threshold: 0.6}
"""


def policy_text(defaults: str = "", routes: str = ROUTES) -> str:
    """Attempts of 1 s within 10 s, three attempts per model, backoff 100-400 ms (jittered),
    and whatever ``defaults`` adds (e.g. a ``circuit_breaker:`` line); ``routes``: the
    ``routes:`` block (the matrix's by default)."""
    models = "".join(MODEL.format(name=n, window=w) for n, w in WINDOWS.items())
    return (
        "version: engine-matrix\n"
        "defaults:\n"
        "  timeouts: {attempt_ms: 1000, total_ms: 10000}\n"
        "  retries: {max_attempts: 3, backoff_ms: 100, max_backoff_ms: 400}\n"
        f"{defaults}"
        f"models:{models}\n{routes}"
    )


def make_router(
    provider: ScriptedProvider, defaults: str = "", routes: str = ROUTES, **kwargs: Any
) -> Router:
    loop = asyncio.get_running_loop()
    return Router(
        load_policy_text(policy_text(defaults, routes), "engine-matrix.yaml"),
        providers={"openai": provider},
        clock=loop.time,
        rng=random.Random(SEED),
        api_keys={},
        sink=MemorySink(capacity=1_000_000),
        **kwargs,
    )


def jitter(*ceilings_s: float) -> list[float]:
    """The waits the router's seeded generator draws for these backoff ceilings, in order."""
    rng = random.Random(SEED)
    return [rng.uniform(0, ceiling) for ceiling in ceilings_s]


def body(route: str, text: str = "hello", stream: bool = False, **extra: Any) -> dict[str, Any]:
    message = {"role": "user", "content": text}
    return {"model": route, "messages": [message], **({"stream": True} if stream else {}), **extra}


async def ask(
    router: Router, route: str, *, stream: bool = False, text: str = "hello", **extra: Any
) -> tuple[str, RequestRecord]:
    """One request that must succeed: the answer (a stream read to its end) and its record."""
    if not stream:
        result = await router.chat(body(route, text, **extra))
        return result.completion.content or "", result.record
    opened = await router.stream(body(route, text, stream=True, **extra))
    answer = "".join([chunk.content async for chunk in opened])
    return answer, opened.record


async def fail(
    router: Router, route: str, *, stream: bool = False, text: str = "hello"
) -> tuple[AllAttemptsFailed, RequestRecord]:
    """One request whose every attempt fails before an answer: the error and its record."""
    with pytest.raises(AllAttemptsFailed) as caught:
        if stream:
            await router.stream(body(route, text, stream=True))
        else:
            await router.chat(body(route, text))
    assert caught.value.record is not None
    return caught.value, caught.value.record


async def broken_stream(router: Router, route: str) -> tuple[str, StreamFailed, RequestRecord]:
    """A stream that opens, then fails: what arrived before, the error, and the record."""
    opened: ChatStream = await router.stream(body(route, stream=True))
    received = ""
    with pytest.raises(StreamFailed) as caught:
        async for chunk in opened:
            received += chunk.content
    return received, caught.value, opened.record


async def record_of(router: Router, route: str, *, stream: bool = False) -> RequestRecord:
    """The record of one request, whatever its outcome."""
    try:
        return (await ask(router, route, stream=stream))[1]
    except ModelrouteError as err:
        assert err.record is not None
        return err.record


def trail(record: RequestRecord) -> list[tuple[str, str, str | None]]:
    """(model, outcome, failure class) of every attempt, in order."""
    return [(a.model, a.outcome, a.failure) for a in record.attempts]


def starts(record: RequestRecord) -> list[float]:
    """When each attempt started, in ms after the request."""
    return [round(a.started_ms, 6) for a in record.attempts]


def latencies(record: RequestRecord) -> list[float | None]:
    return [None if a.latency_ms is None else round(a.latency_ms, 6) for a in record.attempts]


def ms(seconds: float) -> float:
    return round(seconds * 1000, 6)
