"""Shadow comparisons on virtual time: a route served by ``live`` (or a cascade) and
shadowed by ``cheap``, ``tiny`` or ``plain`` (which reports no logprobs), judged by
``judge`` where asked; the real router, engine and shadow worker over ``ScriptedProvider``.
The wall clock the daily budget reads is the loop's, offset to a chosen moment, so a UTC
midnight comes exactly when a test wants it."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

from modelroute import ModelrouteError, StreamFailed, load_policy_text
from modelroute.outcomes import Outcome
from modelroute.records.record import MemorySink, RequestRecord
from modelroute.router import Router
from modelroute.shadow import MemoryOutcomes, ShadowSettings
from modelroute.testing import ScriptedProvider

SEED = 11
DAY = 86_400.0
NOON = 20_000 * DAY + DAY / 2  # a UTC noon, in seconds since the epoch

MODEL = """
  {name}:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model_id: {name}-v1
    allow_floating: true
    prices: {{input: {price}, output: {price}}}
    context_window: 8000
    capabilities: [{caps}]
    latency: {{p50_ms: 20, p95_ms: 50}}"""
PRICES = {"live": 10.0, "cheap": 1.0, "judge": 5.0, "tiny": 0.5, "plain": 0.5}
NO_LOGPROBS = {"plain"}


def policy_text(shadow: str | None, strategy: str = "{kind: fixed, models: [live]}") -> str:
    """One route, ``chat``, with ``shadow`` as its shadow block (None: not shadowed).
    Attempts of 1 s within 10 s, two attempts per model on server errors."""
    models = "".join(
        MODEL.format(name=n, price=p, caps="" if n in NO_LOGPROBS else "logprobs")
        for n, p in PRICES.items()
    )
    block = "" if shadow is None else f"\n    shadow: {shadow}"
    return (
        "defaults:\n"
        "  timeouts: {attempt_ms: 1000, total_ms: 10000}\n"
        "  retries: {max_attempts: 2, backoff_ms: 100, max_backoff_ms: 400}\n"
        f"models:{models}\n"
        "routes:\n"
        "  chat:\n"
        "    output_tokens: 5\n"
        f"    strategy: {strategy}{block}\n"
    )


def make_router(
    provider: ScriptedProvider,
    shadow: str | None,
    *,
    start: float = NOON,
    strategy: str = "{kind: fixed, models: [live]}",
    **settings: Any,
) -> Router:
    """``start``: the wall clock's reading when the loop's clock reads 0."""
    loop = asyncio.get_running_loop()
    return Router(
        load_policy_text(policy_text(shadow, strategy), "shadow.yaml"),
        providers={"openai": provider},
        clock=loop.time,
        rng=random.Random(SEED),
        api_keys={},
        sink=MemorySink(capacity=1_000_000),
        shadow=ShadowSettings(wall_clock=lambda: start + loop.time(), **settings),
    )


def body(text: str = "hello", stream: bool = False) -> dict[str, Any]:
    return {
        "model": "chat",
        "messages": [{"role": "user", "content": text}],
        **({"stream": True} if stream else {}),
    }


@dataclass(frozen=True)
class Seen:
    """What one client saw of its request: the answer, its latency, and its record's
    (final model, recorded answer, attempts, cost)."""

    answer: str
    latency_s: float
    record: tuple[Any, ...]


def seen(answer: str, latency_s: float, record: RequestRecord) -> Seen:
    trail = tuple(
        (a.model, a.outcome, a.failure, a.started_ms, a.latency_ms) for a in record.attempts
    )
    summary = (record.final_model, record.answer, record.status, record.latency_ms, trail)
    return Seen(answer, latency_s, (*summary, record.cost_usd))


async def ask(router: Router, text: str = "hello", stream: bool = False) -> Seen:
    """One request as its client sees it: a failure is what it saw too."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    try:
        if stream:
            return await _read(router, text, started)
        result = await router.chat(body(text))
    except ModelrouteError as err:
        assert err.record is not None
        return seen(f"error: {err}", loop.time() - started, err.record)
    return seen(result.completion.content or "", loop.time() - started, result.record)


async def _read(router: Router, text: str, started: float) -> Seen:
    """A stream read to its end, or to the error that broke it after its first byte."""
    opened = await router.stream(body(text, stream=True))
    answer = ""
    try:
        async for chunk in opened:
            answer += chunk.content
    except StreamFailed as err:
        answer += f" error: {err}"
    return seen(answer, asyncio.get_running_loop().time() - started, opened.record)


def outcomes(router: Router) -> list[Outcome]:
    assert router.shadows is not None
    sink = router.shadows.outcomes
    assert isinstance(sink, MemoryOutcomes)
    return list(sink.outcomes)


def counted(router: Router, name: str, **labels: str) -> float:
    assert router.shadows is not None
    return router.shadows.metrics.value(name, route="chat", **labels)
