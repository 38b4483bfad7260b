"""Outcomes in both stores, against real SQLite files and a real PostgreSQL database: what goes
in comes back whole, writes are idempotent by outcome id (also in bulk), every filter narrows,
and a version-5 store upgrades in place to hold outcomes."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import asyncpg

from modelroute.outcomes import Outcome, OutcomeSource
from modelroute.outcomes.aggregate import load, score_rows
from modelroute.records.stores import schema
from modelroute.records.stores.base import Store
from modelroute.records.stores.body import REQUEST_COLUMNS, V5_COLUMNS, RowEncoder
from modelroute.records.stores.postgres import migrate

from .conftest import make_store, realistic
from .samples import T0

V5 = 5


def outcome(n: int, **kw: Any) -> Outcome:
    fields: dict[str, Any] = {
        "source": OutcomeSource.EVAL,
        "grader": "exact",
        "score": (n % 4) / 3 if n % 4 != 3 else 1.0,
        "model": f"m{n % 3}",
        "created_at": T0 + n,
        "prompt_id": f"p{n}",
        "task": "classify" if n % 2 else "extract",
        "route": "support",
        "run": "run-1",
    }
    return Outcome(**(fields | kw))


def whole(n: int) -> Outcome:
    """Every field set, with values that must survive exactly."""
    return Outcome(
        source=OutcomeSource.SHADOW, grader="judge:large", score=1 / 3, model="small",
        created_at=T0 + 0.1 + 0.2, prompt_id=f"req-{n}", prompt_hash="ab" * 32, task="triage",
        route="support", reported_model="small-2024-07-18", fingerprint="fp_9", cost_usd=1e-300,
        latency_ms=123.45678901234568, request_id=f"req-{n}", run=None,
        confidences={"logprobs": 0.91, "label_probability": 2 / 3},
        detail={"judge": "близко", "nested": {"a": [1, 2.5, None]}},
    )  # fmt: skip


async def test_outcomes_come_back_whole_and_oldest_first(store: Store) -> None:
    rated = Outcome(OutcomeSource.FEEDBACK, "feedback", 0.0, "m", T0)
    outcomes = [whole(1), outcome(2), outcome(1), rated]
    assert await store.add_outcomes(outcomes) == 4
    got = await store.outcomes()
    assert got == sorted(outcomes, key=lambda o: (o.created_at, o.outcome_id))
    assert got[1] == whole(1) and got[1].confidences["label_probability"] == 2 / 3
    assert await store.outcomes(limit=2) == got[:2]


async def test_adding_outcomes_is_idempotent_and_counts_only_new_ones(store: Store) -> None:
    first = [outcome(n) for n in range(100)]
    assert await store.add_outcomes(first) == 100
    assert await store.add_outcomes(first) == 0
    # an overlapping batch, repeating an id inside itself: only the new ones count
    rescored = Outcome(**(first[0].to_dict() | {"score": 0.0}))
    assert rescored.outcome_id == first[0].outcome_id
    batch = [*first[50:], rescored, outcome(100), outcome(100), outcome(101)]
    assert await store.add_outcomes(batch) == 2
    assert await store.add_outcomes([]) == 0
    stored = await store.outcomes()
    assert len(stored) == 102
    assert stored[0] == first[0]  # the first write of an id wins


async def test_replace_overwrites_and_counts_only_new_ones(store: Store) -> None:
    rated = Outcome(OutcomeSource.FEEDBACK, "feedback", 0.2, "m", T0, request_id="r1")
    assert await store.add_outcomes([rated], replace=True) == 1
    again = Outcome(**(rated.to_dict() | {"score": 0.9, "created_at": T0 + 5}))
    other = Outcome(OutcomeSource.FEEDBACK, "feedback", 1.0, "m", T0, request_id="r2")
    # a batch may rate a request twice: the last rating wins
    latest = Outcome(**(rated.to_dict() | {"score": 0.7, "created_at": T0 + 6}))
    assert await store.add_outcomes([again, other, latest], replace=True) == 1
    assert {o.request_id: o.score for o in await store.outcomes()} == {"r1": 0.7, "r2": 1.0}


async def test_a_bulk_import_stores_every_outcome_once(store: Store) -> None:
    # above the size at which the SQLite store imports with a larger page cache
    n = 25_000
    batch = [outcome(i, source=OutcomeSource.IMPORT, run="bulk") for i in range(n)]
    assert await store.add_outcomes(batch) == n
    assert await store.add_outcomes([*batch[-10:], outcome(n, run="bulk")]) == 1
    assert len(await store.outcomes(run="bulk")) == n + 1
    # the store still writes records after an import (its settings are back as they were)
    record = realistic(1)
    await store.write([record])
    assert await store.count() == 1


async def test_outcome_ids_says_which_are_stored(store: Store) -> None:
    stored = [outcome(n) for n in range(1200)]  # more than one chunk of bound parameters
    await store.add_outcomes(stored)
    asked = [o.outcome_id for o in stored[::2]] + ["nope", "nope"]
    assert await store.outcome_ids(asked) == {o.outcome_id for o in stored[::2]}
    assert await store.outcome_ids([]) == set()


async def test_each_filter_narrows(store: Store) -> None:
    outcomes = [
        outcome(1),
        outcome(2, source=OutcomeSource.SHADOW, run=None, request_id="r2"),
        outcome(3, route="other"),
        outcome(4, task="summarise"),
        outcome(5, run="run-2"),
        outcome(6, created_at=T0 + 1000),
    ]
    await store.add_outcomes(outcomes)

    async def ids(**kw: Any) -> list[str | None]:
        return [o.prompt_id for o in await store.outcomes(**kw)]

    assert await ids(source=OutcomeSource.SHADOW) == ["p2"]
    assert await ids(route="other") == ["p3"]
    assert await ids(task="summarise") == ["p4"]
    assert await ids(model="m0") == ["p3", "p6"]
    assert await ids(run="run-2") == ["p5"]
    assert await ids(since=T0 + 5) == ["p5", "p6"]
    assert await ids(route="support", model="m1", source=OutcomeSource.EVAL) == ["p1", "p4"]
    assert await ids(model="none") == []


async def test_outcome_scores_read_what_the_aggregates_need(store: Store) -> None:
    outcomes = [
        outcome(1),
        outcome(2, reported_model="m2-2024", source=OutcomeSource.SHADOW, request_id="r2"),
        outcome(3, route=None, task=None),
        outcome(4, created_at=T0 + 1000),
    ]
    await store.add_outcomes(outcomes)
    by_route = sorted(await store.outcome_scores())
    assert by_route == sorted(score_rows(outcomes))
    assert ("support", "m2", "m2-2024", "shadow", 2 / 3, T0 + 2) in by_route
    assert len(await store.outcome_scores("task")) == 3
    assert len(await store.outcome_scores(since=T0 + 4)) == 1
    assert len(await store.outcome_scores(source=OutcomeSource.SHADOW)) == 1
    aggs = await load(store)
    assert {(a.key, a.model, a.version, a.n) for a in aggs} == {
        ("support", "m1", "m1", 2), ("support", "m2", "m2-2024", 1),
    }  # fmt: skip


# --- a version-5 store upgrades in place -----------------------------------------------------


def _v5_rows() -> tuple[list[tuple[Any, ...]], dict[str, str]]:
    stats: dict[str, str] = {}
    encoder = RowEncoder()
    kept = [REQUEST_COLUMNS.index(c) for c in V5_COLUMNS]
    rows = [encoder.row(realistic(i), stats) for i in range(3)]
    return [tuple(row[i] for i in kept) for row in rows], stats


def make_v5_sqlite(path: Path) -> list[str]:
    rows, stats = _v5_rows()
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(schema.render(schema.BOOTSTRAP, "sqlite"))
    for version, statements in schema.pending(0, "sqlite", target=V5):
        for statement in statements:
            if statement != schema.FOLD:  # nothing to fold in an empty database
                conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
    marks = ", ".join("?" * len(V5_COLUMNS))
    conn.executemany(f"INSERT INTO requests ({', '.join(V5_COLUMNS)}) VALUES ({marks})", rows)
    conn.executemany("INSERT INTO planner_stats VALUES (?, ?)", stats.items())
    conn.close()
    return [r[0] for r in rows]


async def make_v5_postgres(url: str) -> list[str]:
    rows, stats = _v5_rows()
    conn = await asyncpg.connect(url)
    try:
        assert await migrate(conn, target=V5) == V5
        marks = ", ".join(f"${i}" for i in range(1, len(V5_COLUMNS) + 1))
        await conn.executemany(
            f"INSERT INTO requests ({', '.join(V5_COLUMNS)}) VALUES ({marks})", rows
        )
        await conn.executemany("INSERT INTO planner_stats VALUES ($1, $2)", stats.items())
    finally:
        await conn.close()
    return [r[0] for r in rows]


async def test_a_version_5_store_upgrades_to_hold_outcomes(store_target: Path | str) -> None:
    if isinstance(store_target, Path):
        ids = make_v5_sqlite(store_target)
    else:
        ids = await make_v5_postgres(store_target)
    assert await _tables(store_target) == {
        "feedback", "planner_stats", "requests", "schema_migrations",
    }  # fmt: skip
    store = make_store(store_target)
    await store.open()
    try:
        assert await store.schema_version() == schema.CURRENT_VERSION >= 6
        assert await store.ids() == set(ids)
        for rid in ids:  # the records written at version 5 read as before
            got = await store.get(rid)
            assert got is not None and got["route"] == "support-triage"
        assert await store.add_outcomes([whole(1), outcome(2)]) == 2
        assert await store.outcomes(route="support", model="small") == [whole(1)]
    finally:
        await store.close()
    assert "outcomes" in await _tables(store_target)
    assert await _indexes(store_target) >= {
        "outcomes_route_model", "outcomes_task", "outcomes_source_created_at", "outcomes_run",
    }  # fmt: skip


async def _tables(target: Path | str) -> set[str]:
    if isinstance(target, Path):
        with sqlite3.connect(target) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {r[0] for r in rows}
    conn = await asyncpg.connect(target)
    try:
        rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    finally:
        await conn.close()
    return {r[0] for r in rows}


async def _indexes(target: Path | str) -> set[str]:
    if isinstance(target, Path):
        with sqlite3.connect(target) as conn:
            return {r[1] for r in conn.execute("PRAGMA index_list(outcomes)")}
    conn = await asyncpg.connect(target)
    try:
        rows = await conn.fetch("SELECT indexname FROM pg_indexes WHERE tablename = 'outcomes'")
    finally:
        await conn.close()
    return {r[0] for r in rows}
