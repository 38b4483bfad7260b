"""Retries, breakers and the ejection cap working together in the engine, in process: the
real router, planner, engine and breakers over ``ScriptedProvider``, on a virtual-time event
loop (``modelroute.testing.run_virtual``), so every run sees the same timings and draws."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from modelroute import load_policy_text
from modelroute.engine import AllAttemptsFailed
from modelroute.errors import ModelrouteError
from modelroute.failures import FailureClass
from modelroute.records.record import MemorySink, RequestRecord
from modelroute.router import Router
from modelroute.testing import Draw, Fail, Reply, Script, ScriptedProvider, run_virtual

RATE_LIMITED = Fail(FailureClass.RATE_LIMITED, retry_after_s=1.0)
SERVER_ERROR = Fail(FailureClass.SERVER_ERROR)
OK = Reply()

MODEL = """
  {name}:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model_id: {name}
    allow_floating: true
    prices: {{input: 1.0, output: 2.0}}
    context_window: 8000
    latency: {{p50_ms: 20, p95_ms: 50}}"""


def _policy(models: list[str], routes: str, defaults: str = "") -> str:
    return (
        "defaults:\n  timeouts: {attempt_ms: 5000, total_ms: 30000}\n"
        + defaults
        + "models:"
        + "".join(MODEL.format(name=name) for name in models)
        + "\nroutes:\n"
        + routes
    )


def _router(policy: str, provider: ScriptedProvider) -> Router:
    loop = asyncio.get_running_loop()
    return Router(
        load_policy_text(policy),
        api_keys={},
        sink=MemorySink(capacity=1_000_000),
        clock=loop.time,
        providers={"openai": provider},
    )


async def _ask(router: Router, route: str, at: float) -> RequestRecord:
    """One request sent at virtual time ``at``: its record, whatever the outcome."""
    await asyncio.sleep(at - asyncio.get_running_loop().time())
    body = {"model": route, "messages": [{"role": "user", "content": "hello"}]}
    try:
        return (await router.chat(body)).record
    except ModelrouteError as err:
        assert err.record is not None
        return err.record


def _trail(record: RequestRecord) -> list[tuple[str, str, str | None]]:
    return [(a.model, a.outcome, a.failure or a.message) for a in record.attempts]


# -- a retry that waits out Retry-After is sent --------------------------------------------

RETRY_ON_429 = (
    "  retries: {max_attempts: 2, backoff_ms: 10, max_backoff_ms: 10, on: [rate_limited]}\n"
)


def test_the_retry_that_waited_out_retry_after_is_sent() -> None:
    """A's 429 says retry after 1 s; B's 429, half a second later, says the same. A's retry is
    due at 1.0 s, while B's Retry-After runs to 1.5 s: A's retry still goes, as B's does."""
    provider = ScriptedProvider({"a": [RATE_LIMITED, RATE_LIMITED, OK, OK]})

    async def main() -> list[RequestRecord]:
        router = _router(
            _policy(["a"], "  solo:\n    strategy: {kind: fixed, models: [a]}\n", RETRY_ON_429),
            provider,
        )
        try:
            return await asyncio.gather(_ask(router, "solo", 0.0), _ask(router, "solo", 0.5))
        finally:
            await router.aclose()

    first, second = run_virtual(main())
    for record in (first, second):
        assert record.status == "ok"
        assert _trail(record) == [("a", "failed", "rate_limited"), ("a", "ok", None)]
        assert record.attempts[0].retry_after_s == 1.0
        assert record.attempts[1].started_ms == 1000.0  # exactly the provider's wait
    assert provider.tally() == Counter({("a", "rate_limited"): 2, ("a", "ok"): 2})


def test_a_retry_held_back_by_an_open_circuit_is_in_the_record() -> None:
    """While A waits out its Retry-After, two server errors from other requests open the
    model's breaker for ill health: A's retry is skipped, with the reason, and A falls back."""
    provider = ScriptedProvider({"a": [RATE_LIMITED, SERVER_ERROR, SERVER_ERROR]})
    policy = _policy(
        ["a", "b"],
        "  pair:\n    strategy: {kind: fixed, models: [a, b]}\n",
        RETRY_ON_429 + "  circuit_breaker: {consecutive_failures: 2}\n",
    )

    async def main() -> list[RequestRecord]:
        router = _router(policy, provider)
        try:
            return await asyncio.gather(*(_ask(router, "pair", at) for at in (0.0, 0.2, 0.3)))
        finally:
            await router.aclose()

    waiting, *others = run_virtual(main())
    for record in others:
        assert _trail(record) == [("a", "failed", "server_error"), ("b", "ok", None)]
    assert _trail(waiting) == [
        ("a", "failed", "rate_limited"),
        ("a", "skipped", "circuit open (ill health)"),
        ("b", "ok", None),
    ]
    assert waiting.attempts[1].started_ms == 1000.0


# -- a degraded route under load ------------------------------------------------------------

LOAD = """  load:
    retries: {max_attempts: 2, backoff_ms: 50, max_backoff_ms: 200}
    strategy: {kind: fixed, models: [%s]}
"""
ORDERS = [("m500", "m503", "m429"), ("m503", "m429", "m500"), ("m429", "m500", "m503")]


def _load(
    order: tuple[str, ...], rate: float, seconds: float, failing: float, seed: int
) -> tuple[list[RequestRecord], ScriptedProvider]:
    """``rate`` requests a second for ``seconds`` on a route of three models, each failing
    ``failing`` of its calls independently: with 500s, 503s, and 429s (Retry-After: 1 s)."""
    ok = Reply(latency_s=0.02)

    def failing_with(cls: FailureClass, retry_after_s: float | None = None) -> Draw:
        return Draw({Fail(cls, 0.02, retry_after_s): failing}, otherwise=ok)

    provider = ScriptedProvider(
        {
            "m500": failing_with(FailureClass.SERVER_ERROR),
            "m503": failing_with(FailureClass.OVERLOADED),
            "m429": failing_with(FailureClass.RATE_LIMITED, retry_after_s=1.0),
        },
        seed=seed,
    )

    async def main() -> list[RequestRecord]:
        router = _router(_policy(["m500", "m503", "m429"], LOAD % ", ".join(order)), provider)
        try:
            count = int(rate * seconds)
            return await asyncio.gather(*(_ask(router, "load", i / rate) for i in range(count)))
        finally:
            await router.aclose()

    return run_virtual(main()), provider


@pytest.mark.parametrize("order", ORDERS, ids=["-".join(o) for o in ORDERS])
def test_three_models_each_failing_30_percent_still_serve_nearly_everything(
    order: tuple[str, ...],
) -> None:
    """200 requests/s for 20 s; every model fails 30% of its calls, one retry each. Independent
    failures predict 0.3^6 = 0.07% client errors (about 3 of 4,000). Breakers must not turn
    that partial degradation into an outage: no model is ejected, every request is tried."""
    records, provider = _load(order, rate=200, seconds=20, failing=0.3, seed=1)
    assert len(records) == 4000
    failed = [r for r in records if r.status != "ok"]
    assert len(failed) <= 12, Counter(tuple(_trail(r)) for r in failed).most_common(3)
    # Nobody was refused before an upstream call: no circuit_open, every failure fully tried.
    for record in records:
        assert record.attempts and record.attempts[0].outcome != "skipped", _trail(record)
        assert record.decision is not None and not record.decision["rejections"]
    for record in failed:
        assert len(record.attempts) == 6, _trail(record)
    # Each model was asked its share: the first every request (and 30% retries), the second
    # the 9% the first failed twice, the third the 0.8% both failed: about 5,200, 470 and 42.
    sent = Counter(call.model for call in provider.calls)
    assert [sent[m] > least for m, least in zip(order, (5000, 400, 20), strict=True)], sent


def test_a_route_whose_every_model_had_a_bad_spell_recovers_at_once() -> None:
    """All three breakers open (a bad spell); the route keeps two of them as probes (it may
    lose at most half of its three), and the first probe's success closes that breaker:
    requests are served again at once, not refused for the whole 30 s cooldown."""
    ok = Reply(latency_s=0.01)
    server_error = Fail(FailureClass.SERVER_ERROR, latency_s=0.01)
    overloaded = Fail(FailureClass.OVERLOADED, latency_s=0.01)
    provider = ScriptedProvider(
        {
            "m500": Script([server_error] * 10, then=ok),
            "m503": Script([overloaded] * 10, then=ok),
            "m429": Script([server_error] * 10, then=ok),
        }
    )
    policy = _policy(
        ["m500", "m503", "m429"],
        "  load:\n    retries: {max_attempts: 1}\n"
        "    strategy: {kind: fixed, models: [m500, m503, m429]}\n",
    )

    async def main() -> list[RequestRecord]:
        router = _router(policy, provider)
        try:
            bad = await asyncio.gather(*(_ask(router, "load", i * 0.02) for i in range(10)))
            assert all(router.breakers.state(m) == "open" for m in ("m500", "m503", "m429"))
            after = await asyncio.gather(*(_ask(router, "load", 1 + i * 0.02) for i in range(10)))
            return [*bad, *after]
        finally:
            await router.aclose()

    records = run_virtual(main())
    after = records[10:]
    first = after[0]
    assert first.status == "ok"
    probes = [a for a in first.attempts if a.outcome != "skipped"]
    assert [(a.model, a.outcome) for a in probes] == [("m500", "ok")]
    assert first.decision is not None and first.decision["order"] == ["m500", "m503"]
    assert [r["model"] for r in first.decision["rejections"]] == ["m429"]
    assert all(r.status == "ok" for r in after)


def test_a_single_model_route_that_is_down_costs_one_request_at_a_time() -> None:
    """Its breaker is open: every request is offered the model as a probe, one goes out, and
    the others, finding the probe already out, fail at once (503 with Retry-After at the
    gateway) with the skip and its reason in the record."""
    provider = ScriptedProvider({"a": [Fail(FailureClass.SERVER_ERROR, latency_s=0.5)] * 3})
    policy = _policy(
        ["a"],
        "  solo:\n    retries: {max_attempts: 1}\n    strategy: {kind: fixed, models: [a]}\n",
        "  circuit_breaker: {consecutive_failures: 2}\n",
    )
    caught: list[AllAttemptsFailed] = []

    async def ask(router: Router, at: float) -> RequestRecord:
        try:
            return await _ask_or_raise(router, at)
        except AllAttemptsFailed as err:
            caught.append(err)
            assert err.record is not None
            return err.record

    async def _ask_or_raise(router: Router, at: float) -> RequestRecord:
        await asyncio.sleep(at - asyncio.get_running_loop().time())
        body = {"model": "solo", "messages": [{"role": "user", "content": "hello"}]}
        return (await router.chat(body)).record

    async def main() -> list[RequestRecord]:
        router = _router(policy, provider)
        try:
            await asyncio.gather(ask(router, 0.0), ask(router, 0.0))  # opens the breaker
            assert router.breakers.state("a") == "open"
            return await asyncio.gather(*(ask(router, 1 + i * 0.1) for i in range(3)))
        finally:
            await router.aclose()

    probe, *refused = run_virtual(main())
    assert _trail(probe) == [("a", "failed", "server_error")]
    for record in refused:
        assert _trail(record) == [
            ("a", "skipped", "circuit open (ill health): its one probe is already out")
        ]
    assert provider.tally() == Counter({("a", "server_error"): 3})
    refusals = [err.failure for err in caught if err.record in refused]
    assert [(f.cls, f.retry_after_s) for f in refusals] == [(FailureClass.OVERLOADED, 1.0)] * 2
