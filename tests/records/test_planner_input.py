"""A record's planner input and decision through both stores: what goes in comes back whole
(the decision's numbers to the last digit, the statistics the planner read and nothing more),
and ``plan`` on what came back gives the stored decision again."""

from __future__ import annotations

import math
from types import MappingProxyType
from typing import Any

import pytest

from modelroute.errors import UnknownRouteError
from modelroute.planner import ModelStats, RequestContext, StatsSnapshot, plan
from modelroute.planner.context import Limits
from modelroute.policy import Policy, load_policy_dict
from modelroute.records.planner_input import PlannerInput
from modelroute.records.record import RequestRecord
from modelroute.records.stores.base import Store

from ..policies import model
from .conftest import realistic


def policy(max_latency_ms: float = 900, quality: dict[str, Any] | None = None) -> Policy:
    return load_policy_dict(
        {
            "defaults": {"quality": quality or {}},
            "models": {
                "a": model(p95=300, inp=1.0, out=2.0, caps=["tools"], quality={"r": 0.7}),
                "b": model(p95=800, inp=3.0, out=6.0, caps=["tools"], quality={"r": 0.9}),
                "c": model(p95=2000, inp=0.1, out=0.2, ctx=2_000, quality={"r": 0.8}),
                "d": model(p95=400, inp=5.0, out=9.0, caps=["tools"]),
            },
            "routes": {
                "r": {
                    "constraints": {"max_latency_ms": max_latency_ms, "min_quality": 0.75},
                    "strategy": {"kind": "cheapest_qualified", "models": ["a", "b", "c"]},
                    "fallbacks": ["d"],
                    "on_infeasible": "relax_latency",
                },
                "other": {"strategy": {"kind": "fixed", "models": ["d"]}},
            },
        }
    )


SNAPSHOT = StatsSnapshot(
    MappingProxyType(
        {
            ("r", "a"): ModelStats(12.5, 0.1 + 0.2, 0.05, 0.9100000000000001, 400),
            ("r", "b"): ModelStats(quality=0.8, samples=12),
            ("other", "d"): ModelStats(1.0, 2.0, 0.0, None, 50),  # not read for route r
        }
    ),
    MappingProxyType({"b": ModelStats(100.0, 950.0, 0.0, None, 30), "z": ModelStats()}),
    frozenset({"d", "z"}),
)


def planned(
    p: Policy, ctx: RequestContext, i: int, snapshot: StatsSnapshot = SNAPSHOT
) -> RequestRecord:
    r = realistic(i)
    r.decision, r.route, r.status = None, None, "rejected"
    r.planner_input = PlannerInput(ctx, snapshot)
    r.task, r.metadata = ctx.task, dict(ctx.metadata)
    try:
        decision = plan(ctx, p, snapshot)
    except UnknownRouteError:
        return r
    r.decision, r.route, r.planner_input.decision = decision.to_dict(), decision.route, decision
    r.policy_hash = p.hash
    return r


def contexts() -> list[RequestContext]:
    meta = MappingProxyType({"tenant": "t1", "ключ": "значение"})
    return [
        RequestContext("r", "triage", meta, 120, None, True),
        RequestContext("r", None, meta, 1800, 400, needs_json=True),  # c: context too small
        RequestContext("r", limits=Limits(None, 0.1, 0.5)),  # relaxed, with a note
        RequestContext("nowhere", prompt_tokens=5),  # no route: nothing read
        RequestContext("other", prompt_tokens=77, has_images=True, needs_logprobs=True),
    ]


async def test_planner_input_and_decision_come_back_whole(store: Store) -> None:
    p = policy()
    records = [planned(p, ctx, i) for i, ctx in enumerate(contexts())]
    assert records[2].decision is not None and records[2].decision["relaxed"]
    assert records[2].decision["notes"] and records[1].decision["rejections"]
    assert records[3].decision is None and records[3].route is None
    await store.write(records)
    for r in records:
        got = await store.get(r.request_id)
        assert got is not None
        assert got == {**r.to_dict(), "feedback": []}
        back = RequestRecord.from_dict(got)
        assert back == r
        assert back.planner_input is not None and r.planner_input is not None
        # Only what the planner read: route r's candidates, not route other's or model z's.
        stats = back.planner_input.stats
        if r.route == "r":
            assert set(stats.by_route) == {("r", "a"), ("r", "b")}
            assert set(stats.by_model) == {"b"} and stats.open_circuits == {"d"}
        if r.decision is None:
            assert stats == StatsSnapshot()
            continue
        again = plan(back.planner_input.context, p, stats)
        assert again.to_dict() == got["decision"]
    listed = {row["request_id"]: row for row in await store.query()}
    assert all("planner_input" not in row for row in listed.values())
    assert listed[records[0].request_id]["decision"] == records[0].decision


async def test_statistics_shared_by_requests_are_stored_once(store: Store) -> None:
    p = policy()
    ctx = contexts()[0]
    first = [planned(p, ctx, i) for i in range(20)]
    changed = StatsSnapshot(SNAPSHOT.by_route, SNAPSHOT.by_model, frozenset())
    second = [planned(p, ctx, i, changed) for i in range(20, 30)]
    await store.write(first + second)
    await store.write([planned(p, ctx, 40)])  # another batch, the same statistics
    ids = set()
    async for page in store.scan():
        ids.update(str(r["planner_input"]["stats"]) for r in page)
    assert len(ids) == 2
    assert await _planner_stats_rows(store) == 2


async def _planner_stats_rows(store: Store) -> int:
    from modelroute.records.stores.postgres import PostgresStore
    from modelroute.records.stores.sqlite import SqliteStore

    if isinstance(store, SqliteStore):
        import sqlite3

        with sqlite3.connect(store.path) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM planner_stats").fetchone()[0])
    assert isinstance(store, PostgresStore)
    async with store.pool.acquire() as conn:
        return int(await conn.fetchval("SELECT COUNT(*) FROM planner_stats"))


async def test_non_finite_numbers(store: Store) -> None:
    """Infinite statistics and limits round trip; an infinite number inside a decision (an
    infinite latency prior in the policy) is kept as NaN, and the record still reads."""
    p = load_policy_dict(
        {
            "models": {"a": model(p95=math.inf), "b": model(p95=100)},
            "routes": {
                "r": {
                    "constraints": {"max_latency_ms": 500},
                    "strategy": {"kind": "fixed", "models": ["a", "b"]},
                }
            },
        }
    )
    odd = StatsSnapshot(
        MappingProxyType({("r", "b"): ModelStats(latency_p95_ms=math.inf, samples=3)}),
        MappingProxyType({}),
        frozenset(),
    )
    r = planned(p, RequestContext("r", limits=Limits(max_cost_usd=math.inf)), 1, odd)
    assert r.decision is not None and r.decision["rejections"][0]["value"] == math.inf
    await store.write([r])
    got = await store.get(r.request_id)
    assert got is not None
    assert got["planner_input"] == r.to_dict()["planner_input"]  # inf statistics and limits
    rejections = got["decision"]["rejections"]
    assert len(rejections) == 2
    assert all(math.isnan(x["value"]) and "nan" in x["message"] for x in rejections)
    with pytest.raises(AssertionError):
        assert got["decision"] == r.decision


# Measured from outcomes: a mean with its interval, sources and version, per route and model.
MEASURED = StatsSnapshot(
    MappingProxyType(
        {
            ("r", "a"): ModelStats(
                12.5, 300.0, 0.05, 0.81, 412, 40, 0.1 + 0.7, 0.84, "eval+shadow", "a-2024-07-18"
            ),
            ("r", "b"): ModelStats(
                quality=0.78,
                quality_samples=30,
                quality_low=0.6,
                quality_high=0.95,
                quality_sources="feedback",
            ),
        }
    ),
)


@pytest.mark.parametrize("compare", ["mean", "lower_bound"])
async def test_measured_quality_with_its_interval_comes_back_and_replays(
    store: Store, compare: str
) -> None:
    p = policy(quality={"compare": compare})
    records = [planned(p, ctx, i, MEASURED) for i, ctx in enumerate(contexts())]
    chosen = records[0].decision
    assert chosen is not None
    [a] = [c for tier in chosen["tiers"] for c in tier if c["model"] == "a"] or [
        {"quality_low": None}
    ]
    if compare == "mean":  # 0.81 clears 0.75 by its mean, and a's estimate keeps the interval
        assert a["quality_low"] == 0.1 + 0.7 and a["quality_version"] == "a-2024-07-18"
    else:  # its lower bound 0.8 clears it too; b's 0.6 does not, though its mean 0.78 would
        assert any("lower bound" in r["message"] for r in chosen["rejections"])
    await store.write(records)
    for r in records:
        got = await store.get(r.request_id)
        assert got is not None and got == {**r.to_dict(), "feedback": []}
        back = RequestRecord.from_dict(got)
        assert back.planner_input is not None
        if r.decision is not None:
            again = plan(back.planner_input.context, p, back.planner_input.stats)
            assert again.to_dict() == got["decision"]
            stored = back.planner_input.stats.by_route.get(("r", "a"))
            assert stored is None or stored == MEASURED.by_route[("r", "a")]


def test_a_decision_stored_before_intervals_reads_with_none() -> None:
    from modelroute.records.stores.body import decision_from

    old_estimate = [0.001, 300.0, "prior", 0.7, "prior", 0]  # six fields, as written before
    tiers = [[["a", old_estimate, False, []]]]
    stored = ["r", "cheapest_qualified", "min_cost", "sha256:x", "name", tiers, [], 10, 256,
              None, None, 0.75, None, []]  # fmt: skip
    [[candidate]] = decision_from(stored).tiers
    assert candidate.estimate.quality_samples == 0
    assert candidate.estimate.quality_low is None and candidate.estimate.quality_version is None
    assert candidate.to_dict()["quality_sources"] is None
