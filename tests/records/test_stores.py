"""Both record stores, against real SQLite files and a real PostgreSQL database: what goes in
comes back whole, writes are idempotent, reads filter and aggregate alike, old databases
upgrade in place, and several processes can write one SQLite file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson
import pytest

from modelroute.records.record import RequestRecord
from modelroute.records.stores import open_store, schema
from modelroute.records.stores import sqlite as sqlite_store
from modelroute.records.stores.base import RecordRejected, Store
from modelroute.records.stores.postgres import PostgresStore
from modelroute.records.stores.sqlite import SqliteStore

from ..conftest import ROOT
from .conftest import attempt_count, make_store, realistic
from .samples import T0, all_records, attempt, record


def stored(record: RequestRecord, feedback: list[Any] | None = None) -> dict[str, Any]:
    return {**record.to_dict(), "feedback": feedback or []}


async def test_every_record_shape_comes_back_whole(store: Store) -> None:
    records = [*all_records(), realistic(1)]
    await store.write(records)
    assert await store.count() == len(records)
    for r in records:
        got = await store.get(r.request_id)
        assert got == stored(r)
        assert RequestRecord.from_dict(got) == r
    assert await store.get("no-such-id") is None


async def test_writes_are_idempotent(store: Store) -> None:
    first = [realistic(i) for i in range(50)]
    await store.write(first)
    changed = RequestRecord.from_dict(first[0].to_dict())
    changed.route, changed.attempts = "other", changed.attempts[:1]
    extra = realistic(50)
    # Replays overlap what is stored; a batch may even repeat an id.
    await store.write([*first[25:], changed, first[3], extra, first[3]])
    await store.write(first)
    assert await store.count() == 51
    assert await attempt_count(store) == 2 * 51
    assert await store.ids() == {r.request_id for r in [*first, extra]}
    assert await store.get(first[0].request_id) == stored(first[0])  # first write wins


async def test_infinities_round_trip_and_refused_data_is_reported(store: Store) -> None:
    odd = realistic(1)
    odd.confidence, odd.ttft_ms, odd.attempts[0].retry_after_s = float("inf"), float("-inf"), 1e308
    await store.write([odd])
    assert await store.get(odd.request_id) == stored(odd)
    bad = realistic(2)
    bad.status = None  # type: ignore[assignment]  # NOT NULL: no retry can store this
    with pytest.raises(RecordRejected):
        await store.write([realistic(3), bad])
    unwritable = realistic(4)
    unwritable.metadata = {"k": object()}  # type: ignore[dict-item]  # not JSON
    with pytest.raises(RecordRejected):
        await store.write([realistic(5), unwritable])
    assert await store.count() == 1  # the batch is one transaction


async def test_query_filters_and_orders_newest_first(store: Store) -> None:
    records = all_records()
    await store.write(records)
    newest_first = sorted(records, key=lambda r: r.started_at, reverse=True)

    async def ids(**kw: Any) -> list[str]:
        return [row["request_id"] for row in await store.query(**kw)]

    assert await ids() == [r.request_id for r in newest_first]
    assert await ids(limit=2) == [r.request_id for r in newest_first[:2]]
    assert await ids(route="chat") == [r.request_id for r in newest_first if r.route == "chat"]
    assert await ids(model="big") == [r.request_id for r in newest_first if r.final_model == "big"]
    assert await ids(failed=True) == [r.request_id for r in newest_first if r.status != "ok"]
    assert await ids(since=T0 + 5) == [r.request_id for r in newest_first if r.started_at >= T0 + 5]
    assert await ids(route="cascade", model="big", failed=True) == []
    row = (await store.query(route="cascade", limit=1))[0]
    assert row["attempt_count"] == 2 and "attempts" not in row
    assert row["decision"] is None and row["metadata"] == {}


async def test_stats_per_route_and_model(store: Store) -> None:
    rows = [
        record(i, [attempt("m", cost_usd=0.5)], latency_ms=float(i), final_model="m")
        for i in range(1, 21)
    ]
    for r in rows[:4]:
        r.status = "failed"
    rows.append(record(99, [], 3.0, route="other", status="rejected", http_status=404))
    old = record(100, [attempt("m")], 5000.0, final_model="m")
    old.started_at = T0 - 3600
    await store.write([*rows, old])
    for r, score in zip(rows[4:8], (1.0, 0.0, 0.5, None), strict=True):
        assert await store.add_feedback(r.request_id, score=score, label="seen", source="test")

    stats = await store.stats(since=T0)
    assert stats == [
        {
            "route": "other", "model": None, "requests": 1, "errors": 1, "error_rate": 1.0,
            "spend_usd": 0.0, "p50_latency_ms": 3.0, "p95_latency_ms": 3.0,
            "quality": None, "feedback": 0,
        },
        {
            "route": "support", "model": "m", "requests": 20, "errors": 4, "error_rate": 0.2,
            # nearest rank: the 10th and the 19th of 20 latencies 1..20
            "spend_usd": pytest.approx(20 * 0.5), "p50_latency_ms": 10.0, "p95_latency_ms": 19.0,
            "quality": pytest.approx(0.5), "feedback": 4,
        },
    ]  # fmt: skip
    everything = {(s["route"], s["model"]): s["requests"] for s in await store.stats()}
    assert everything == {("other", None): 1, ("support", "m"): 21}


async def test_feedback_and_quality(store: Store) -> None:
    a, b = realistic(1), realistic(2)
    b.final_reported_model = "claude-3-5-haiku-20250101"
    await store.write([a, b])
    assert not await store.add_feedback("unknown-id", score=1.0)
    assert await store.add_feedback(a.request_id, 1.0, "correct", "human", "spot on")
    assert await store.add_feedback(a.request_id, 0.5, None, "judge", None)
    assert await store.add_feedback(b.request_id, 0.0, "wrong", "human", None)

    got = await store.get(a.request_id)
    assert got is not None
    # One request, one feedback: the latest replaced the earlier, whatever its source.
    [only] = got["feedback"]
    assert (only["score"], only["label"], only["source"], only["comment"]) == (
        0.5, None, "judge", None,
    )  # fmt: skip
    assert time.time() - only["created_at"] < 60
    quality = await store.quality()
    assert quality == {
        ("support-triage", "steady", "claude-3-5-haiku-20241022"): (0.5, 1),
        ("support-triage", "steady", "claude-3-5-haiku-20250101"): (0.0, 1),
    }
    assert await store.quality(since=time.time() + 3600) == {}
    # A label with no score replaces the score too: that request no longer counts.
    assert await store.add_feedback(a.request_id, None, "flagged", "human", None)
    assert await store.quality() == {
        ("support-triage", "steady", "claude-3-5-haiku-20250101"): (0.0, 1),
    }


async def test_repeated_feedback_for_one_request_counts_once(store: Store) -> None:
    rated, other = realistic(1), realistic(2)
    await store.write([rated, other])
    for _ in range(30):
        assert await store.add_feedback(rated.request_id, 0.0, None, "user", None)
    assert await store.add_feedback(other.request_id, 1.0)
    assert await store.quality() == {
        ("support-triage", "steady", "claude-3-5-haiku-20241022"): (0.5, 2),
    }
    [stats] = await store.stats()
    assert stats["feedback"] == 2 and stats["quality"] == pytest.approx(0.5)
    got = await store.get(rated.request_id)
    assert got is not None and len(got["feedback"]) == 1


async def test_export_jsonl_and_parquet(store: Store, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    records = [*all_records(), realistic(7)]
    await store.write(records)
    await store.add_feedback(records[0].request_id, 1.0)

    assert await store.export(tmp_path / "r.jsonl") == len(records)
    lines = [orjson.loads(line) for line in (tmp_path / "r.jsonl").read_bytes().splitlines()]
    by_id = {line["request_id"]: line for line in lines}
    assert by_id[records[-1].request_id] == stored(records[-1])
    assert [RequestRecord.from_dict(line) for line in lines] == sorted(
        records, key=lambda r: r.started_at
    )

    assert await store.export(tmp_path / "r.parquet", "parquet") == len(records)
    table = pq.read_table(tmp_path / "r.parquet")
    assert table.num_rows == len(records)
    rows = {row["request_id"]: row for row in table.to_pylist()}
    last = rows[records[-1].request_id]
    assert last["attempts"] == records[-1].to_dict()["attempts"]
    assert orjson.loads(last["decision"]) == records[-1].decision
    assert last["usage"]["cached_input_tokens"] == 1024
    assert len(orjson.loads(rows[records[0].request_id]["feedback"])) == 1

    with pytest.raises(ValueError, match="unknown export format"):
        await store.export(tmp_path / "r.csv", "csv")  # type: ignore[arg-type]


async def test_an_empty_store_exports_empty_files(store: Store, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    assert await store.export(tmp_path / "e.jsonl") == 0
    assert (tmp_path / "e.jsonl").read_bytes() == b""
    assert await store.export(tmp_path / "e.parquet", "parquet") == 0
    assert pq.read_table(tmp_path / "e.parquet").num_rows == 0


async def test_schema_is_current_and_opening_again_changes_nothing(
    store: Store, store_target: Path | str
) -> None:
    assert await store.schema_version() == schema.CURRENT_VERSION
    await store.write([realistic(1)])
    again = make_store(store_target)
    await again.open()
    try:
        assert await again.schema_version() == schema.CURRENT_VERSION
        assert await again.count() == 1
    finally:
        await again.close()


# --- an old database upgrades in place -------------------------------------------------------

V1_REQUEST = {
    "request_id": "old-1", "started_at": T0, "route": "legacy", "task": None,
    "selected_by": "default", "endpoint": "chat.completions", "streamed": False,
    "status": "ok", "http_status": 200, "failure": None, "error": None,
    "final_model": "m1", "final_reported_model": "m1-2024", "final_fingerprint": "fp_1",
    "policy_hash": "sha256:old", "confidence": 0.8, "escalations": 0,
    "input_tokens": 10, "output_tokens": 5, "cached_input_tokens": 2, "cost_usd": 0.001,
    "price_unknown": False, "latency_ms": 123.0, "ttft_ms": None, "attempt_count": 1,
    "metadata": '{"team": "a"}', "decision": '{"steps": []}', "prompt": "p", "answer": "a",
}  # fmt: skip
V1_ATTEMPT = {
    "request_id": "old-1", "seq": 0, "model": "m1", "provider": "openai", "model_id": "m1-id",
    "tier": 0, "started_ms": 0.0, "latency_ms": 120.0, "ttft_ms": None, "outcome": "ok",
    "failure": None, "status": None, "message": None, "retry_after_s": None,
    "reported_model": "m1-2024", "fingerprint": "fp_1", "input_tokens": 10,
    "output_tokens": 5, "cached_input_tokens": 2, "cost_usd": 0.001, "price_known": True,
    "confidence": None,
}  # fmt: skip


def _insert(table: str, row: dict[str, Any], mark: str) -> tuple[str, list[Any]]:
    marks = ", ".join(mark.format(i) for i in range(1, len(row) + 1))
    return f"INSERT INTO {table} ({', '.join(row)}) VALUES ({marks})", list(row.values())


def make_v1_sqlite(path: Path) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(schema.render(schema.BOOTSTRAP, "sqlite"))
    for version, statements in schema.pending(0, "sqlite", target=1):
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
    conn.execute(*_insert("requests", V1_REQUEST, "?"))
    conn.execute(*_insert("attempts", V1_ATTEMPT, "?"))
    conn.close()


async def make_v1_postgres(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(schema.render(schema.BOOTSTRAP, "postgres"))
        for version, statements in schema.pending(0, "postgres", target=1):
            for statement in statements:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", version, 0.0)
        for table, row in (("requests", V1_REQUEST), ("attempts", V1_ATTEMPT)):
            sql, values = _insert(table, row, "${}")
            await conn.execute(sql, *values)
    finally:
        await conn.close()


async def test_a_version_1_database_upgrades_in_place(store_target: Path | str) -> None:
    if isinstance(store_target, Path):
        make_v1_sqlite(store_target)
    else:
        await make_v1_postgres(store_target)
    store = make_store(store_target)
    await store.open()
    try:
        assert await store.schema_version() == schema.CURRENT_VERSION
        old = await store.get("old-1")
        assert old is not None
        assert old["usage"] == {
            "input_tokens": 10, "output_tokens": 5, "cached_input_tokens": 2,
            "cache_write_tokens": 0, "reasoning_tokens": 0,
        }  # fmt: skip
        assert old["metadata"] == {"team": "a"} and old["decision"] == {"steps": []}
        assert old["policy_version"] is None and old["client_key_id"] is None
        assert [a["reported_model"] for a in old["attempts"]] == ["m1-2024"]
        RequestRecord.from_dict(old)  # still a valid record
        new = realistic(1)
        await store.write([new])
        assert await store.get(new.request_id) == stored(new)
        assert await store.add_feedback("old-1", 1.0)
        assert await store.count() == 2
    finally:
        await store.close()


def make_v3_sqlite(path: Path, feedback: list[tuple[float | None, str]]) -> None:
    make_v1_sqlite(path)
    conn = sqlite3.connect(path, isolation_level=None)
    for version, statements in schema.pending(1, "sqlite", target=3):
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
    for n, (score, source) in enumerate(feedback):
        conn.execute(
            "INSERT INTO feedback (request_id, score, source, created_at) VALUES (?, ?, ?, ?)",
            ("old-1", score, source, T0 + n),
        )
    conn.close()


async def make_v3_postgres(url: str, feedback: list[tuple[float | None, str]]) -> None:
    await make_v1_postgres(url)
    conn = await asyncpg.connect(url)
    try:
        for version, statements in schema.pending(1, "postgres", target=3):
            for statement in statements:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", version, 0.0)
        for n, (score, source) in enumerate(feedback):
            await conn.execute(
                "INSERT INTO feedback (request_id, score, source, created_at) "
                "VALUES ($1, $2, $3, $4)",
                "old-1", score, source, T0 + n,
            )  # fmt: skip
    finally:
        await conn.close()


async def test_a_version_3_database_keeps_the_latest_feedback_of_each_request(
    store_target: Path | str,
) -> None:
    # Before version 4 every post was a row of its own, and each counted in quality.
    repeated = [(0.0, "user")] * 29 + [(0.75, "judge")]
    if isinstance(store_target, Path):
        make_v3_sqlite(store_target, repeated)
    else:
        await make_v3_postgres(store_target, repeated)
    store = make_store(store_target)
    await store.open()
    try:
        assert await store.schema_version() == schema.CURRENT_VERSION
        old = await store.get("old-1")
        assert old is not None
        assert [(f["score"], f["source"]) for f in old["feedback"]] == [(0.75, "judge")]
        assert await store.quality() == {("legacy", "m1", "m1-2024"): (0.75, 1)}
        assert await store.add_feedback("old-1", 0.25, None, "user", None)
        assert await store.quality() == {("legacy", "m1", "m1-2024"): (0.25, 1)}
    finally:
        await store.close()


# --- choosing a store from a URL -------------------------------------------------------------


def test_open_store_picks_the_store_from_the_url(tmp_path: Path) -> None:
    assert isinstance(open_store(), SqliteStore)
    assert open_store().path == Path("modelroute.db")  # type: ignore[attr-defined]
    assert open_store(f"sqlite:///{tmp_path}/a.db").path == tmp_path / "a.db"  # type: ignore[attr-defined]
    assert open_store("sqlite:///rel/a.db").path == Path("rel/a.db")  # type: ignore[attr-defined]
    assert open_store(str(tmp_path / "b.db")).path == tmp_path / "b.db"  # type: ignore[attr-defined]
    assert isinstance(open_store("postgresql://u:secret@db/records"), PostgresStore)
    assert isinstance(open_store("postgres://db/records"), PostgresStore)
    assert "secret" not in repr(open_store("postgresql://u:secret@db/records"))
    for bad in ("mysql://db/x", "sqlite://", ""):
        with pytest.raises(ValueError, match="record store URL"):
            open_store(bad)


async def test_sqlite_gives_way_to_the_loop_only_while_nothing_waits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    yields = 0
    real_yield = sqlite_store._yield

    def counted() -> None:
        nonlocal yields
        yields += 1
        real_yield()

    monkeypatch.setattr(sqlite_store, "_yield", counted)
    store = SqliteStore(tmp_path / "r.db")
    await store.open()
    records = [realistic(i) for i in range(200)]
    await store.write(records[:100], backlog=0)
    assert yields > 0  # keeping up: a request arriving mid-batch should not wait for it
    yields = 0
    await store.write(records[100:], backlog=1)
    assert yields == 0  # behind: every yield would only let the queue grow
    assert await store.ids() == {r.request_id for r in records}
    await store.close()


# --- several processes, one SQLite file ------------------------------------------------------


async def _write_range(path: str, start: int, stop: int) -> None:
    store = SqliteStore(Path(path), busy_timeout_s=30.0)
    await store.open()
    try:
        records = [realistic(i) for i in range(start, stop)]
        for r, i in zip(records, range(start, stop), strict=True):
            r.request_id = f"shared-{i:06d}"
        for j in range(0, len(records), 100):
            await store.write(records[j : j + 100])
    finally:
        await store.close()


def test_several_processes_write_one_sqlite_file(tmp_path: Path) -> None:
    db = tmp_path / "shared.db"
    # Overlapping ranges: every id is written by two processes at once, stored once.
    ranges = [(0, 2000), (1000, 3000), (2000, 4000), (3000, 4000)]
    children = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.records.test_stores", str(db), str(a), str(b)],
            cwd=ROOT,
        )
        for a, b in ranges
    ]
    assert [child.wait(timeout=120) for child in children] == [0] * len(children)
    conn = sqlite3.connect(db)
    assert conn.execute("SELECT COUNT(*), COUNT(DISTINCT request_id) FROM requests").fetchone() == (
        4000,
        4000,
    )
    attempts = "SELECT SUM(json_array_length(body, '$[18]')) FROM requests"
    assert conn.execute(attempts).fetchone() == (8000,)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


if __name__ == "__main__":
    import asyncio

    asyncio.run(_write_range(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
