"""Rolling statistics shared through Redis: two replicas' windows, synced explicitly (the
background task does the same every ``interval_s``)."""

from __future__ import annotations

import itertools

from modelroute.records.record import Attempt, AttemptResult, RequestRecord
from modelroute.state.redis_state import connect
from modelroute.state.rolling import RollingStats
from modelroute.state.shared_stats import SharedStats

from .conftest import REDIS_URL
from .support import assert_closing_ends_despite_a_swallowed_cancellation

_ids = itertools.count()


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def record(route: str, model: str, latency_ms: float, ok: bool = True) -> RequestRecord:
    outcome = AttemptResult.OK if ok else AttemptResult.FAILED
    attempt = Attempt(model, "openai", model, 0, 0.0, latency_ms, outcome=outcome)
    return RequestRecord(f"r{next(_ids)}", 0.0, route=route, attempts=[attempt])


class Replica:
    """One process's view: its own windows, and the sink sharing them."""

    def __init__(self, prefix: str, url: str = REDIS_URL, window: int = 500) -> None:
        self.clock = Clock()
        self.rolling = RollingStats(window=window, clock=self.clock)
        self.shared = SharedStats(connect(url), prefix=prefix, window=window)
        self.shared.attach(self.rolling)

    def submit(self, rec: RequestRecord) -> None:
        self.rolling.submit(rec)
        self.shared.submit(rec)

    def snapshot(self):  # type: ignore[no-untyped-def]
        self.clock.now += 10  # past refresh_s: the snapshot is rebuilt
        return self.rolling.snapshot()


async def test_latency_measured_on_one_replica_is_in_the_others_snapshot(
    redis_prefix: str,
) -> None:
    a, b = Replica(redis_prefix), Replica(redis_prefix)
    for i in range(30):
        a.submit(record("triage", "m", 100.0 + i))
    assert b.snapshot().by_route == {}  # b served nothing itself
    await a.shared.sync()
    await b.shared.sync()
    seen = b.snapshot()
    stats = seen.by_route[("triage", "m")]
    assert stats.samples == 30 and stats.error_rate == 0.0
    assert stats.latency_p50_ms == 115.0 and stats.latency_p95_ms == 128.0
    assert seen.by_model["m"] == stats
    assert a.snapshot().by_route[("triage", "m")] == stats  # both plan on the same figures
    await a.shared.close()
    await b.shared.close()


async def test_both_replicas_attempts_count_in_one_window(redis_prefix: str) -> None:
    a, b = Replica(redis_prefix, window=60), Replica(redis_prefix, window=60)
    for _ in range(25):
        a.submit(record("triage", "m", 50.0))
    for _ in range(25):
        b.submit(record("triage", "m", 70.0, ok=False))
    await a.shared.sync()
    await b.shared.sync()
    await a.shared.sync()
    for replica in (a, b):
        stats = replica.snapshot().by_route[("triage", "m")]
        assert stats.samples == 50 and stats.error_rate == 0.5
        assert stats.latency_p50_ms == 50.0  # failures carry no latency
    for _ in range(40):  # the window keeps the latest 60 attempts, whoever made them
        b.submit(record("triage", "m", 90.0))
    await b.shared.sync()
    await a.shared.sync()
    stats = a.snapshot().by_route[("triage", "m")]
    assert stats.samples == 60 and stats.error_rate == 20 / 60  # a's 25 successes are out
    assert stats.latency_p50_ms == 90.0
    await a.shared.close()
    await b.shared.close()


async def test_a_replica_that_read_the_current_windows_is_not_sent_them_again(
    redis_prefix: str,
) -> None:
    a, b = Replica(redis_prefix), Replica(redis_prefix)
    for _ in range(25):
        a.submit(record("triage", "m", 10.0))
    await a.shared.sync()
    await b.shared.sync()
    b.rolling.impose({("triage", "m"): [99.0] * 25}, {})  # what b holds, marked
    await b.shared.sync()  # nothing new was written: nothing read, nothing imposed
    assert b.snapshot().by_route[("triage", "m")].latency_p50_ms == 99.0
    a.submit(record("triage", "m", 10.0))
    await a.shared.sync(read=False)
    await b.shared.sync()
    assert b.snapshot().by_route[("triage", "m")].latency_p50_ms == 10.0
    await a.shared.close()
    await b.shared.close()


async def test_without_redis_each_replica_keeps_its_own_windows() -> None:
    a = Replica("mr-test-none:", url="redis://127.0.0.1:1/0")
    for _ in range(25):
        a.submit(record("triage", "m", 30.0))
    try:
        await a.shared.sync()
    except Exception as exc:
        a.shared._failed(exc)
    else:  # pragma: no cover - port 1 answering Redis
        raise AssertionError("port 1 answered")
    assert a.shared.errors == 1
    assert a.snapshot().by_route[("triage", "m")].latency_p50_ms == 30.0
    assert a.shared._count == 50  # kept to be written once Redis is back (route and model)
    await a.shared.close()


async def test_closing_ends_the_sync_even_if_the_client_swallows_the_cancellation(
    redis_prefix: str,
) -> None:
    a = Replica(redis_prefix)
    a.shared._interval = a.shared._poll = 0.001
    await assert_closing_ends_despite_a_swallowed_cancellation(a.shared, a.shared.close)
