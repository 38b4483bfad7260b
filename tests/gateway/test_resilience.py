"""Circuit breakers, hedging and cascade escalation through the real gateway (see
test_faults.py for how these tests run)."""

from __future__ import annotations

import asyncio
import math
import time

import pytest

from modelroute.records.record import RequestRecord

from .faults_support import (
    FRANCE,
    POLICY,
    ask,
    fail,
    one_record_each,
    scripted_sim,
    sdk_client,
    trail,
    user_messages,
)
from .harness import gateway
from .paced_upstream import Exchange, PacedUpstream, Plan

# -- circuit breakers -------------------------------------------------------------------------


class ShiftedClock:
    """Monotonic time plus an offset the test moves forward: cooldowns pass without sleeping,
    while timeouts still run on real time."""

    def __init__(self) -> None:
        self.offset = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.offset


def _breakers(**settings: float) -> str:
    """The shared policy with these circuit-breaker defaults."""
    inline = ", ".join(f"{key}: {value}" for key, value in settings.items())
    return POLICY.replace("defaults:\n", f"defaults:\n  circuit_breaker: {{{inline}}}\n")


def _circuit_rejected(record: RequestRecord, model: str) -> bool:
    assert record.decision is not None
    return any(
        r["model"] == model and r["reason"] == "circuit_open" for r in record.decision["rejections"]
    )


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_open_circuit_skips_the_model_until_a_probe_succeeds(stream: bool) -> None:
    clock = ShiftedClock()
    policy = _breakers(consecutive_failures=2, cooldown_s=30)
    sim = scripted_sim(**{"primary-sim": {"script": ["server_error", "server_error"]}})
    async with gateway(policy, sim, clock=clock) as gw:
        for _ in range(2):
            _, record, _ = await ask(gw, "once", stream=stream)
            assert trail(record) == [
                ("primary", "failed", "server_error"),
                ("secondary", "ok", None),
            ]
        assert gw.router.breakers.state("primary") == "open"

        answer, record, _ = await ask(gw, "once", stream=stream)
        assert answer == "secondary answer"
        assert _circuit_rejected(record, "primary")
        assert trail(record) == [("secondary", "ok", None)]
        assert gw.sim.stats()["primary-sim"] == {"server_error": 2}  # not called while open

        clock.offset += 30  # the cooldown passes: one probe may go through
        assert gw.router.breakers.state("primary") == "half_open"
        answer, record, _ = await ask(gw, "once", stream=stream)
        assert answer == "Paris"
        assert not _circuit_rejected(record, "primary")
        assert trail(record) == [("primary", "ok", None)]
        assert gw.router.breakers.state("primary") == "closed"
        one_record_each(gw, 4)


async def test_failed_probe_reopens_the_circuit() -> None:
    clock = ShiftedClock()
    policy = _breakers(consecutive_failures=1, cooldown_s=30)
    sim = scripted_sim(**{"primary-sim": {"script": ["server_error", "server_error"]}})
    async with gateway(policy, sim, clock=clock) as gw:
        await ask(gw, "once")
        assert gw.router.breakers.state("primary") == "open"
        clock.offset += 30
        _, probe, _ = await ask(gw, "once")
        assert trail(probe) == [("primary", "failed", "server_error"), ("secondary", "ok", None)]
        assert gw.router.breakers.state("primary") == "open"  # one failed probe re-opens it
        _, after, _ = await ask(gw, "once")
        assert _circuit_rejected(after, "primary")
        assert trail(after) == [("secondary", "ok", None)]
        assert gw.sim.stats()["primary-sim"] == {"server_error": 2}
        one_record_each(gw, 3)


async def test_probe_claimed_after_the_deadline_is_released() -> None:
    """A half-open model reached after the deadline passed is not called; its probe slot
    must stay free, or the model would be rejected as ``circuit_open`` for good."""
    clock = ShiftedClock()
    policy = _breakers(consecutive_failures=1, cooldown_s=30)
    sim = scripted_sim(
        **{
            "primary-sim": {"script": ["server_error", "hang"]},
            "secondary-sim": {"script": ["server_error"]},
        }
    )
    async with gateway(policy, sim, clock=clock) as gw:
        breakers = gw.router.breakers
        error, _ = await fail(gw, "once")  # both fail: both circuits open
        assert error.status_code == 502
        clock.offset += 30  # both half-open
        late = asyncio.ensure_future(fail(gw, "quick"))
        while gw.sim.stats()["primary-sim"].get("hang") is None:  # primary's probe is out
            await asyncio.sleep(0.005)
        clock.offset += 5  # the route's 3 s deadline passes while primary hangs
        error, record = await late
        assert error.status_code == 504
        assert trail(record) == [("primary", "failed", "timeout")]  # secondary never called
        assert breakers.state("secondary") == "half_open"
        assert "secondary" not in breakers.open_models()  # its probe is still available
        answer, record, _ = await ask(gw, "once")
        assert _circuit_rejected(record, "primary")  # re-opened by its failed probe
        assert answer == "secondary answer" and trail(record) == [("secondary", "ok", None)]
        assert breakers.state("secondary") == "closed"
        one_record_each(gw, 3)


async def test_circuit_opened_after_planning_is_skipped_by_the_engine() -> None:
    """Request A is planned while primary is healthy; while A waits on a hung first model,
    request B trips primary's breaker; A then skips primary instead of calling it."""
    policy = _breakers(consecutive_failures=1, cooldown_s=30)
    sim = scripted_sim(
        **{"mid-sim": {"script": ["hang"]}, "primary-sim": {"script": ["server_error"]}}
    )
    async with gateway(policy, sim) as gw:
        first = asyncio.ensure_future(ask(gw, "late-switch"))
        while "mid-sim" not in gw.sim.stats():  # A is planned and waiting on mid
            await asyncio.sleep(0.005)
        _, tripping, _ = await ask(gw, "once")
        assert trail(tripping) == [
            ("primary", "failed", "server_error"),
            ("secondary", "ok", None),
        ]
        answer, record, _ = await first
        assert answer == "secondary answer"
        assert not _circuit_rejected(record, "primary")  # it was closed at planning time
        assert [(a.model, a.outcome) for a in record.attempts] == [
            ("mid", "failed"),
            ("primary", "skipped"),
            ("secondary", "ok"),
        ]
        assert record.attempts[1].message == "circuit open (ill health)"
        assert gw.sim.stats()["primary-sim"] == {"server_error": 1}
        one_record_each(gw, 2)


async def test_a_streamed_answer_counts_once_for_its_breaker() -> None:
    """Two streamed answers, then two failures: half of four calls failed, which opens a
    breaker at error_rate 0.5. (Counting each stream's success twice, at its first byte and
    at its end, hid the failures behind six calls.)"""
    policy = _breakers(min_calls=4, error_rate=0.5, consecutive_failures=100)
    sim = scripted_sim(**{"primary-sim": {"script": ["ok", "ok", "server_error", "server_error"]}})
    async with gateway(policy, sim) as gw:
        for _ in range(2):
            answer, _, _ = await ask(gw, "once", stream=True)
            assert answer == "Paris"
        _, record, _ = await ask(gw, "once", stream=True)
        assert trail(record)[0] == ("primary", "failed", "server_error")
        assert gw.router.breakers.state("primary") == "closed"  # 1 of 3
        await ask(gw, "once", stream=True)
        assert gw.router.breakers.state("primary") == "open"  # 2 of 4


# -- hedging ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_hedge_answers_from_the_faster_model(stream: bool) -> None:
    slow = {"latency_ms": {"p50": 800}, "ttft_ms": {"p50": 800}}
    async with gateway(POLICY, scripted_sim(**{"primary-sim": slow})) as gw:
        answer, record, headers = await ask(gw, "hedged", stream=stream)
        assert answer == "secondary answer"
        assert headers["x-modelroute-model"] == "secondary"
        assert trail(record) == [("primary", "cancelled", None), ("secondary", "ok", None)]
        assert 100 <= record.attempts[1].started_ms < 400  # launched at the hedge time
        assert record.latency_ms < 700  # did not wait for the slow one
        assert gw.sim.stats() == {"primary-sim": {"ok": 1}, "secondary-sim": {"ok": 1}}
        one_record_each(gw, 1)


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_hedge_partner_is_still_the_fallback_when_the_first_fails_fast(stream: bool) -> None:
    async with gateway(POLICY, scripted_sim(**{"primary-sim": {"script": ["server_error"]}})) as gw:
        answer, record, _ = await ask(gw, "hedged", stream=stream)
        assert answer == "secondary answer"
        assert trail(record) == [("primary", "failed", "server_error"), ("secondary", "ok", None)]
        # Fell back as soon as the first failed, without waiting for the hedge time.
        assert record.attempts[1].started_ms < 100
        one_record_each(gw, 1)


HEDGED_STREAMS = """
version: hedge-streams-1
defaults:
  timeouts: {attempt_ms: 3000, total_ms: 6000}
  retries: {max_attempts: 1}
models:
  first:
    provider: openai
    base_url: "{upstream}"
    model_id: first-up
    allow_floating: true
    prices: {input: 1.0, output: 2.0}
    context_window: 4000
    latency: {p50_ms: 20, p95_ms: 50}
  second:
    provider: openai
    base_url: "{upstream}"
    model_id: second-up
    allow_floating: true
    prices: {input: 1.0, output: 2.0}
    context_window: 4000
    latency: {p50_ms: 20, p95_ms: 50}
routes:
  hedged:
    hedge_after_ms: 100
    strategy: {kind: fixed, models: [first, second]}
"""
MODEL_IDS = {"first": "first-up", "second": "second-up"}


async def _gone_after(exchange: Exchange) -> float:
    """How long the upstream kept streaming to a client that no longer reads (its next
    write after the connection closed notices)."""
    for _ in range(200):
        if exchange.gone_after_s is not None:
            return exchange.gone_after_s
        await asyncio.sleep(0.01)
    raise AssertionError(f"{exchange.model}'s stream was never released: {exchange}")


async def test_hedge_loser_that_opened_in_the_same_instant_is_closed_at_once() -> None:
    """Both streams produce their first content in one step, so both attempts finish
    together: one wins, and the other's open stream is closed right away, not left to the
    garbage collector with its upstream connection still streaming."""
    plans = {"first-up": Plan(chunks=20), "second-up": Plan(chunks=20)}
    upstream = PacedUpstream(plans, together=("first-up", "second-up"))
    async with upstream.running() as up:
        policy = HEDGED_STREAMS.replace("{upstream}", up.url)
        async with gateway(policy, scripted_sim()) as gw:
            answer, record, headers = await ask(gw, "hedged", stream=True)
            winner = headers["x-modelroute-model"]
            [loser] = set(MODEL_IDS) - {winner}
            assert answer == "".join(f"{MODEL_IDS[winner]}:{i} " for i in range(20))
            attempts = {a.model: a for a in record.attempts}
            assert len(record.attempts) == 2 and set(attempts) == set(MODEL_IDS)
            assert attempts[winner].outcome == "ok"
            lost = attempts[loser]
            assert (lost.outcome, lost.message) == ("cancelled", "lost the hedge race")
            assert lost.ttft_ms is not None  # it had opened: the same-instant case
            exchange = up.exchanges[MODEL_IDS[loser]]
            assert await _gone_after(exchange) < 0.2  # plan: 20 pieces over 0.4 s
            assert not exchange.finished and exchange.written < 10
            assert up.exchanges[MODEL_IDS[winner]].finished
            one_record_each(gw, 1)


async def test_hedge_loser_still_waiting_for_content_is_closed_at_once() -> None:
    """The slow first stream has sent headers but no content when the second answers: its
    attempt is cancelled and its connection released while the winner still streams."""
    plans = {"first-up": Plan(chunks=0), "second-up": Plan(chunks=10)}
    async with PacedUpstream(plans).running() as up:
        policy = HEDGED_STREAMS.replace("{upstream}", up.url)
        async with gateway(policy, scripted_sim()) as gw:
            answer, record, headers = await ask(gw, "hedged", stream=True)
            assert headers["x-modelroute-model"] == "second"
            assert answer == "".join(f"second-up:{i} " for i in range(10))
            assert trail(record) == [("first", "cancelled", None), ("second", "ok", None)]
            assert record.attempts[0].message == "lost the hedge race"
            assert record.attempts[0].ttft_ms is None
            # Gone within a few of its 20 ms writes after the race was decided (~0.1 s).
            assert await _gone_after(up.exchanges["first-up"]) < 0.4
            assert not up.exchanges["first-up"].finished
            one_record_each(gw, 1)


# -- cascade escalation -----------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_confident_answer_is_accepted_without_escalation(stream: bool) -> None:
    async with gateway(POLICY, scripted_sim()) as gw:
        client = sdk_client(gw)
        if stream:
            events = client.chat.completions.create(
                model="triage", messages=user_messages(FRANCE), stream=True
            )
            chunks = [chunk async for chunk in await events]
            answer = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            assert all(c.choices[0].logprobs is None for c in chunks if c.choices)
        else:
            completion = await client.chat.completions.create(
                model="triage", messages=user_messages(FRANCE)
            )
            answer = completion.choices[0].message.content or ""
            assert completion.choices[0].logprobs is None  # asked for by us, not the client
        assert answer == "Paris"
        [record] = gw.records()
        assert record.escalations == 0 and record.final_model == "primary"
        assert trail(record) == [("primary", "ok", None)]
        assert record.attempts[0].confidence == pytest.approx(math.exp(-0.05))
        [sent] = gw.sim.requests()
        assert sent.body["logprobs"] is True and sent.body["stream"] is False


async def test_logprobs_the_client_asked_for_are_kept() -> None:
    async with gateway(POLICY, scripted_sim()) as gw:
        completion = await sdk_client(gw).chat.completions.create(
            model="triage", messages=user_messages(FRANCE), logprobs=True
        )
        logprobs = completion.choices[0].logprobs
        assert logprobs is not None and logprobs.content
        assert logprobs.content[0].token == "Paris"


@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
async def test_low_confidence_answer_escalates_to_the_next_tier(stream: bool) -> None:
    async with gateway(POLICY, scripted_sim()) as gw:
        answer, record, headers = await ask(gw, "triage", "Are you unsure?", stream=stream)
        assert answer == "secondary answer"
        assert headers["x-modelroute-model"] == "secondary"
        assert "escalated 1" in headers["x-modelroute-reason"]
        assert record.escalations == 1 and record.final_model == "secondary"
        assert trail(record) == [("primary", "low_confidence", None), ("secondary", "ok", None)]
        assert record.attempts[0].confidence == pytest.approx(math.exp(-2.0))
        # The last tier is asked exactly what the client asked: no logprobs added.
        last = gw.sim.requests()[-1]
        assert last.model == "secondary-sim" and "logprobs" not in last.body
        one_record_each(gw, 1)
