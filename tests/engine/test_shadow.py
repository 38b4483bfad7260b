"""Shadow comparisons never touch the client's request: the same traffic gives the same
answers, latencies and records with the shadow off, on, slow, hanging or failing; the
sampled share is the declared one; what the shadow worker does is counted."""

from __future__ import annotations

import asyncio
import random

import numpy as np
import pytest
from scipy.stats import binomtest

from modelroute.failures import FailureClass
from modelroute.outcomes import Outcome, OutcomeSource, prompt_hash
from modelroute.router import Router
from modelroute.shadow import MemoryOutcomes
from modelroute.testing import Draw, Fail, Hang, Reply, ScriptedProvider, run_virtual

from .shadow_support import Seen, ask, body, counted, make_router, outcomes

ALWAYS = "{models: [cheap], sample: 1, max_usd_per_day: 100}"


@pytest.mark.parametrize("sample", [0.05, 0.3])
async def test_the_sampled_share_is_the_declared_one(sample: float) -> None:
    n = 2000
    provider = ScriptedProvider({"live": Reply("Paris"), "cheap": Reply("paris")})
    router = make_router(provider, f"{{models: [cheap], sample: {sample}, max_usd_per_day: 100}}")
    for i in range(n):
        await ask(router, f"question {i}")
    await router.aclose()
    sent = sum(1 for call in provider.calls if call.model == "cheap")
    test = binomtest(sent, n, sample)
    assert test.pvalue > 0.01, (sent, n, sample, test.pvalue)
    low, high = test.proportion_ci(0.99)
    assert low <= sample <= high
    # Every sampled request was sent once and compared once; nothing else was.
    assert counted(router, "requests", model="cheap") == sent
    found = outcomes(router)
    assert len(found) == counted(router, "outcomes", model="cheap") == sent
    assert len({o.request_id for o in found}) == sent
    assert all(o.score == 1.0 and o.grader == "agreement" for o in found)  # "paris" ~ "Paris"
    # Shadow calls make no records: one record per client request, none of them the shadow's.
    records = list(router.records.records)  # type: ignore[attr-defined]
    assert len(records) == n
    assert {a.model for r in records for a in r.attempts} == {"live"}


def _traffic(n: int) -> list[float]:
    rng = random.Random(5)
    return sorted(rng.uniform(0, 60) for _ in range(n))


LIVE = Draw(
    {
        Reply("Paris", latency_s=0.05): 0.6,
        Reply("Paris", latency_s=0.2): 0.3,
        Fail(FailureClass.SERVER_ERROR, latency_s=0.01): 0.1,  # retried after jitter
    }
)
SHADOWS = {
    "agreeing": Reply("Paris", latency_s=0.05),
    "slow": Reply("Paris", latency_s=0.9),
    "hanging": Hang(),
    "failing": Fail(FailureClass.SERVER_ERROR, latency_s=0.3),
}


async def _serve(shadow: str | None) -> tuple[list[Seen], ScriptedProvider, Router]:
    """200 requests arriving over a minute, half of them shadowed (unless ``shadow`` is
    None): what each client saw, in order."""
    scripts = {"live": LIVE, **({"cheap": SHADOWS[shadow]} if shadow else {})}
    provider = ScriptedProvider(scripts, seed=3)
    block = None if shadow is None else "{models: [cheap], sample: 0.5, max_usd_per_day: 100}"
    router = make_router(provider, block)

    async def client(i: int, at: float) -> Seen:
        await asyncio.sleep(at)
        return await ask(router, f"question {i}", stream=i % 3 == 0)

    seen = await asyncio.gather(*(client(i, at) for i, at in enumerate(_traffic(200))))
    await router.aclose()
    return list(seen), provider, router


@pytest.mark.parametrize("shadow", list(SHADOWS))
def test_the_client_sees_the_same_with_the_shadow_on_and_off(shadow: str) -> None:
    # Each run on a fresh loop, so both start at the same instant of virtual time.
    off, _, _ = run_virtual(_serve(None))
    on, provider, router = run_virtual(_serve(shadow))
    assert on == off  # answers, latencies, records: identical, to the last bit
    p99 = np.percentile([s.latency_s for s in off], 99)
    assert np.percentile([s.latency_s for s in on], 99) == p99
    assert isinstance(router, Router)
    sent = counted(router, "requests", model="cheap")
    tripped = counted(router, "skipped", model="cheap", reason="circuit_open")
    assert sent > 0 and sent + tripped > 50  # about half the 200 were sampled
    assert [c for c in provider.calls if c.model == "cheap"]


def test_a_failing_shadow_model_is_counted_and_nothing_else_changes() -> None:
    _, provider, router = run_virtual(_serve("failing"))
    assert isinstance(router, Router) and router.shadows is not None
    sent = counted(router, "requests", model="cheap")
    failed = counted(router, "failures", model="cheap", failure="server_error")
    # The shadow's own breaker opened after ten failures in a row: later shadows were not
    # sent upstream, and say why. The breaker the live traffic reads never heard of them.
    tripped = counted(router, "skipped", model="cheap", reason="circuit_open")
    assert failed == sent >= 5 and tripped > 0 and failed + tripped > 50
    assert router.shadows.deps.breakers.snapshot()["cheap"] == "open"
    assert "cheap" not in router.breakers.open_models()
    # Each shadow call is tried under the model's own policy (two attempts, while its
    # breaker allows), with no fallback to another model.
    calls = [c for c in provider.calls if c.model == "cheap"]
    assert failed < len(calls) <= 2 * failed
    assert {c.model for c in provider.calls} == {"live", "cheap"}
    assert outcomes(router) == []
    _, _, hanging = run_virtual(_serve("hanging"))
    assert isinstance(hanging, Router)
    timed_out = counted(hanging, "failures", model="cheap", failure="timeout")
    assert timed_out == counted(hanging, "requests", model="cheap") > 0
    assert counted(hanging, "skipped", model="cheap", reason="circuit_open") > 0


async def test_an_outcome_says_what_was_compared() -> None:
    provider = ScriptedProvider(
        {
            "live": Reply("Paris", reported_model="live-2024-08-06", fingerprint="fp_live"),
            "cheap": Reply("Lyon", latency_s=0.25, reported_model="cheap-2024-07-18"),
        }
    )
    router = make_router(provider, ALWAYS)
    request = body("capital of France?")
    result = await router.chat({**request, "metadata": {"task": "geo"}})
    await router.aclose()
    [outcome] = outcomes(router)
    assert outcome.source is OutcomeSource.SHADOW
    assert (outcome.grader, outcome.score) == ("agreement", 0.0)
    assert (outcome.model, outcome.reported_model) == ("cheap", "cheap-2024-07-18")
    assert outcome.request_id == outcome.prompt_id == result.record.request_id
    assert (outcome.route, outcome.task) == ("chat", "geo")
    assert outcome.prompt_hash == prompt_hash(request["messages"])
    assert outcome.latency_ms == pytest.approx(250.0)
    # ScriptedProvider's usage: 10 prompt tokens and one per word, at $1 per million.
    assert outcome.cost_usd == pytest.approx(11 / 1e6)
    assert counted(router, "cost_usd", model="cheap") == pytest.approx(11 / 1e6)
    assert outcome.detail["baseline_model"] == "live"
    assert outcome.detail["baseline_version"] == "live-2024-08-06"
    # The client's record is the live request's alone.
    assert result.record.answer == "Paris" and result.record.final_model == "live"
    # The shadow was asked what the client asked, not streamed.
    [shadow_call] = [c for c in provider.calls if c.model == "cheap"]
    assert shadow_call.stream is False and shadow_call.body["messages"] == request["messages"]


async def test_a_stream_is_shadowed_once_it_has_ended_and_a_broken_one_never() -> None:
    live = Reply("Paris is lovely", latency_s=0.1, gap_s=0.5)
    provider = ScriptedProvider({"live": live, "cheap": Reply("Paris is lovely")})
    router = make_router(provider, ALWAYS)
    loop = asyncio.get_running_loop()
    seen = await ask(router, stream=True)
    ended = loop.time()
    await asyncio.sleep(1)
    [shadow_call] = [c for c in provider.calls if c.model == "cheap"]
    assert shadow_call.at == ended == pytest.approx(1.1)
    assert seen.answer == "Paris is lovely"
    [outcome] = outcomes(router)
    assert outcome.score == 1.0  # compared with the whole streamed text
    provider.scripts["live"].steps.append(Reply("Paris is", fail_after=1, gap_s=0.1))
    broken = await ask(router, stream=True)
    assert broken.record[2] == "stream_error"
    await router.aclose()
    assert len([c for c in provider.calls if c.model == "cheap"]) == 1


async def test_a_full_queue_drops_and_counts_and_the_client_waits_for_nothing() -> None:
    provider = ScriptedProvider(
        {"live": Reply("Paris", latency_s=0.05), "cheap": Reply(latency_s=0.5)}
    )
    router = make_router(provider, ALWAYS, queue_size=2, workers=1)
    seen = await asyncio.gather(*(ask(router, f"q{i}") for i in range(10)))
    assert [s.latency_s for s in seen] == [pytest.approx(0.05)] * 10
    # The ten answers came in the same instant: two found room in the queue, eight did not.
    assert counted(router, "skipped", model="cheap", reason="queue_full") == 8
    assert router.shadows is not None
    registry = router.shadows.metrics.registry
    await asyncio.sleep(0.1)  # one in progress, one queued: both still to be compared
    assert registry.get_sample_value("modelroute_shadow_pending") == 2
    await router.aclose()
    assert counted(router, "outcomes", model="cheap") == 2


async def test_closing_drains_the_queue_within_its_bound() -> None:
    provider = ScriptedProvider({"live": Reply("Paris"), "cheap": Reply("Paris", latency_s=0.75)})
    router = make_router(provider, ALWAYS, workers=1, drain_s=2.0)
    for i in range(6):
        await ask(router, f"q{i}")
    loop = asyncio.get_running_loop()
    closing = loop.time()
    await router.aclose()
    assert loop.time() - closing == pytest.approx(2.0)  # the bound, not the 4.5 s of work
    stored = counted(router, "outcomes", model="cheap")
    cancelled = counted(router, "failures", model="cheap", failure="cancelled")
    dropped = counted(router, "skipped", model="cheap", reason="shutdown")
    assert (stored, cancelled, dropped) == (2, 1, 3)
    assert len(outcomes(router)) == 2
    assert router.shadows is not None
    registry = router.shadows.metrics.registry
    assert registry.get_sample_value("modelroute_shadow_pending") == 0


async def test_a_route_without_a_shadow_has_no_shadow_worker() -> None:
    router = make_router(ScriptedProvider(), None)
    assert router.shadows is None
    await ask(router)
    await router.aclose()


async def test_outcomes_kept_in_memory_are_the_latest_each_once() -> None:
    memory = MemoryOutcomes(capacity=2)
    made = [
        Outcome(OutcomeSource.SHADOW, "agreement", 1.0, "cheap", 0.0, request_id=f"r{i}")
        for i in range(3)
    ]
    assert await memory.add_outcomes(made[:2]) == 2
    assert await memory.add_outcomes(made[1:2]) == 0  # the same comparison, stored once
    assert await memory.add_outcomes(made[2:]) == 1
    assert [o.request_id for o in memory.outcomes] == ["r1", "r2"]
