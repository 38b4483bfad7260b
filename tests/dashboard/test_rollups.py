"""The rollups equal a direct aggregation of the raw rows, on both stores: written in several
batches, through the writer, with a replayed (partly stored) batch, and after migration 9
backfills a store written at version 8."""

from __future__ import annotations

import math
import sqlite3
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from modelroute.records import rollups
from modelroute.records.stores import schema
from modelroute.records.stores.base import Store
from modelroute.records.stores.body import REQUEST_COLUMNS, RowEncoder
from modelroute.records.stores.postgres import PostgresStore, migrate
from modelroute.records.stores.postgres_write import batch_payload
from modelroute.records.stores.sqlite import SqliteStore
from modelroute.records.writer import RecordWriter

from ..records.conftest import make_store
from .traffic import T0, close, expected, expected_rejections, nearest_rank, raw_rows, traffic

FIGURES = ", ".join(rollups.FIGURES)


async def stored(store: Store, grain: str) -> dict[tuple[Any, ...], list[Any]]:
    rows = await store.read_sql(f"SELECT bucket, route, model, {FIGURES} FROM rollup_{grain}")
    return {tuple(r[:3]): list(r[3:]) for r in rows}


async def assert_rollups_match(store: Store, total: int) -> None:
    rows = await raw_rows(store)
    assert len(rows) == total
    for grain, width in rollups.WIDTHS.items():
        want, got = expected(rows, width), await stored(store, grain)
        assert got.keys() == want.keys()
        for key, values in want.items():
            # latency_ms_sum (index 5 of FIGURES) is not in the expected list: drop it
            figures = got[key][:5] + got[key][6:]
            assert figures[:4] == values[:4], key
            assert figures[4] == pytest.approx(values[4], rel=1e-9, abs=1e-12), key
            assert figures[5:] == values[5:], key
        rejected = await store.read_sql(
            f"SELECT bucket, route, candidate, reason, requests FROM rejections_{grain}"
        )
        assert {tuple(r[:4]): r[4] for r in rejected} == expected_rejections(rows, width)
    policies = await store.read_sql(
        "SELECT policy_hash, first_seen, last_seen, requests FROM policy_traffic"
    )
    by_hash: dict[str, list[float]] = {}
    for at, *_, policy in rows:
        by_hash.setdefault(policy, []).append(at)
    assert {p: (first, last, n) for p, first, last, n in policies} == {
        p: (min(ts), max(ts), len(ts)) for p, ts in by_hash.items()
    }


async def test_rollups_equal_the_raw_rows_across_batches(store: Store) -> None:
    records = traffic(1200)
    for i in range(0, 900, 225):  # several batches sharing minutes, hours and keys
        await store.write(records[i : i + 225])
    await assert_rollups_match(store, 900)
    # a replayed spool: half of the batch is stored already, and counts once
    await store.write(records[800:1000])
    await assert_rollups_match(store, 1000)
    await store.write(records[800:1000])  # all stored already: nothing changes
    await assert_rollups_match(store, 1000)


async def test_rollups_through_the_writer(store_target: Path | str, tmp_path: Path) -> None:
    store = make_store(store_target)
    writer = RecordWriter(store, tmp_path / "spool", batch_size=64)
    await writer.start()
    try:
        for r in traffic(700, seed=3):
            writer.submit(r)
        await writer.close()
        await assert_rollups_match(store, 700)
        assert await store.rebuild_rollups() == 700  # the repair adds up to the same
        await assert_rollups_match(store, 700)
    finally:
        await store.close()


async def test_percentiles_from_the_histogram_are_within_a_bucket(store: Store) -> None:
    records = traffic(1500, seed=5)
    await store.write(records)
    for route in ("chat", "triage"):
        latencies = [r.latency_ms for r in records if r.route == route]
        hist = [0] * rollups.LATENCY_BUCKETS
        for (grain, _, r, _), values in _rollup_of(records).figures.items():
            if grain == "hour" and r == route:
                for i in range(rollups.LATENCY_BUCKETS):
                    hist[i] += values[len(rollups.FIGURES) - rollups.LATENCY_BUCKETS + i]
        sums = ", ".join(f"SUM({c})" for c in rollups.HISTOGRAM)
        p = "?" if store.dialect == "sqlite" else "$1"
        got = await store.read_sql(f"SELECT {sums} FROM rollup_hour WHERE route = {p}", [route])
        assert list(got[0]) == hist
        for q in (0.5, 0.95):
            exact = nearest_rank(latencies, q)
            shown = rollups.percentile(hist, q)
            # the exact value lies in the bucket the shown one represents: within ±16%
            assert close(shown, exact)


def _rollup_of(records: list[Any]) -> rollups.Rollup:
    encoder = RowEncoder()
    reason = REQUEST_COLUMNS.index("decision_reason")
    return rollups.Rollup().extend(
        rollups.contribution(r, encoder.row(r, {})[reason]) for r in records
    )


def test_percentile_is_nearest_rank_over_buckets() -> None:
    hist = [0] * rollups.LATENCY_BUCKETS
    hist[8], hist[16] = 9, 1  # nine at ~10 ms, one at ~100 ms
    assert rollups.percentile(hist, 0.5) == rollups.representative(8)
    assert rollups.percentile(hist, 0.9) == rollups.representative(8)
    assert rollups.percentile(hist, 0.95) == rollups.representative(16)
    assert rollups.percentile([0] * rollups.LATENCY_BUCKETS, 0.5) is None
    assert rollups.latency_bucket(0.2) == 0
    assert rollups.latency_bucket(float("nan")) == 0
    assert rollups.latency_bucket(1e9) == rollups.LATENCY_BUCKETS - 1
    assert rollups.latency_bucket(10.0) == 9  # [10, 10^(9/8))


# --- migration 9 backfills a version-8 store --------------------------------------------


def _v8_sqlite(path: Path, rows: list[tuple[Any, ...]]) -> None:
    store = SqliteStore(path)
    store._conn = sqlite3.connect(path, isolation_level=None)
    store._migrate(8)
    insert = f"INSERT INTO requests ({', '.join(REQUEST_COLUMNS)}) VALUES "
    store._conn.executemany(insert + f"({', '.join('?' * len(REQUEST_COLUMNS))})", rows)
    store._conn.close()


async def _v8_postgres(url: str, records: list[Any]) -> None:
    conn = await asyncpg.connect(url)
    try:
        assert await migrate(conn, target=8) == 8
        payload = batch_payload(RowEncoder(), records)
        cols = ", ".join(REQUEST_COLUMNS)
        await conn.execute(
            f"INSERT INTO requests ({cols}) SELECT {cols} "
            "FROM json_populate_recordset(NULL::requests, $1::json)",
            payload.requests,
        )
    finally:
        await conn.close()


async def test_migration_9_backfills_the_rollups(store_target: Path | str) -> None:
    records = traffic(800, seed=11)
    encoder = RowEncoder()
    rows = [encoder.row(r, {}) for r in records]  # decisions without planner input: no stats
    if isinstance(store_target, Path):
        _v8_sqlite(store_target, rows)
    else:
        await _v8_postgres(store_target, records)
    store = make_store(store_target)
    await store.open()
    try:
        assert await store.schema_version() == schema.CURRENT_VERSION == 9
        await assert_rollups_match(store, 800)
        versions = await store.read_sql("SELECT policy_hash, version FROM policy_traffic")
        assert sorted(v for _, v in versions) == ["v1", "v2"]
        # the migrated store keeps them with each batch from then on
        await store.write(traffic(900, seed=11)[800:])
        await assert_rollups_match(store, 900)
    finally:
        await store.close()


async def test_postgres_store_class_is_used(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    try:
        assert await store.schema_version() == 9
    finally:
        await store.close()


# --- the set-based SQL adds up exactly what ``Rollup`` adds up, at the edges ------------------


def _edge_records(dialect: str) -> list[Any]:
    """Records at the edges of every figure: times just below a minute and an hour, before
    1970, not finite (not counted); latencies on and around the histogram's edges, below
    1 ms, past 100 s, not finite; spend not finite; no decision, no route, no model; a
    policy whose later records carry no version."""
    base = traffic(40, seed=13)
    minute, hour = T0 + 120.0, T0 + 3600.0
    times = [
        math.nextafter(minute, 0.0), minute, math.nextafter(hour, 0.0), hour, T0 - 0.5,
        -30.5, -3600.0, -0.000001, math.inf, -math.inf,
    ]  # fmt: skip
    latencies = [
        0.0, 0.999999, 1.0, math.nextafter(1.0, 0.0), 10.0, 10 ** (9 / 8), 1e5, 99_999.99,
        1e9, math.inf, 1e300, math.nextafter(10 ** (17 / 8), 0.0),
    ]  # fmt: skip
    if dialect == "postgres":  # SQLite stores NaN as NULL, which the NOT NULL columns refuse
        times.append(math.nan)
        latencies.append(math.nan)
    out = []
    for i, r in enumerate(base):
        change: dict[str, Any] = {"started_at": times[i] if i < len(times) else r.started_at}
        if i < len(latencies):
            change["latency_ms"] = latencies[i]
        if i % 9 == 0:
            change["cost_usd"] = math.inf
        if dialect == "postgres" and i % 9 == 4:
            change["cost_usd"] = math.nan
        if i % 5 == 1:
            change["decision"] = None
        if i % 6 == 2:
            change["route"] = None
            change["final_model"] = None
        if i >= 30:  # one policy: a version, then none: the version is kept
            change["policy_hash"] = "sha256:" + "cc" * 32
            change["policy_version"] = "v3" if i < 34 else None
            change["started_at"] = T0 + i
        out.append(replace(r, **change))
    return out


async def _assert_equals_rollup(store: Store, want: rollups.Rollup) -> None:
    for grain in rollups.WIDTHS:
        cols = ", ".join(rollups.ROLLUP_COLUMNS)
        got = {
            tuple(r[:3]): r[3:] for r in await store.read_sql(f"SELECT {cols} FROM rollup_{grain}")
        }
        expect = {tuple(r[:3]): r[3:] for r in want.rows(grain)}
        assert got.keys() == expect.keys(), grain
        spend, latency = rollups.FIGURES.index("spend_usd"), rollups.FIGURES.index("latency_ms_sum")
        for key, values in expect.items():
            stored = got[key]
            for i, (a, b) in enumerate(zip(stored, values, strict=True)):
                if i in (spend, latency):
                    assert a == pytest.approx(b, rel=1e-12, abs=1e-15), (grain, key, i)
                else:
                    assert a == b, (grain, key, rollups.FIGURES[i])
        rejected = await store.read_sql(
            f"SELECT {', '.join(rollups.REJECTION_COLUMNS)} FROM rejections_{grain}"
        )
        assert sorted(tuple(r) for r in rejected) == want.rejection_rows(grain)
    policies = await store.read_sql(
        f"SELECT {', '.join(rollups.POLICY_COLUMNS)} FROM policy_traffic ORDER BY policy_hash"
    )
    assert [tuple(r) for r in policies] == want.policy_rows()


async def test_sql_rollups_equal_the_python_rollup_at_the_edges(store: Store) -> None:
    records = _edge_records(store.dialect)
    want = _rollup_of(records)
    assert want.records == len(records) - (3 if store.dialect == "postgres" else 2)
    await store.write(records[20:])
    # partly stored already (PostgreSQL: its one statement undone, then in two steps)
    await store.write(records[:25])
    await _assert_equals_rollup(store, want)
    assert await store.rebuild_rollups() == want.records  # the set-based backfill
    await _assert_equals_rollup(store, want)
    hists = await store.read_sql(
        f"SELECT {', '.join(rollups.HISTOGRAM)} FROM rollup_hour WHERE requests > 0"
    )
    used = {i for row in hists for i, n in enumerate(row) if n}
    assert {0, 1, 9, 10, 40, 41} <= used  # the edge latencies reached the end buckets
    versions = await store.read_sql(
        "SELECT version FROM policy_traffic WHERE policy_hash = 'sha256:" + "cc" * 32 + "'"
    )
    assert versions == [("v3",)]
