"""A store at schema version 3 (a column per field, one ``attempts`` row per attempt) upgrades in
place to one row per record: every record, attempt, float and feedback row comes back as it
was written, on SQLite and PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from modelroute.records.record import Attempt, RequestRecord
from modelroute.records.stores import schema
from modelroute.records.stores.legacy import TOKENS
from modelroute.records.stores.postgres import PostgresStore

from .conftest import make_store, realistic
from .samples import all_records

V3 = 3
# The version-3 columns, in the order the rows below list them.
V3_REQUEST = (
    "request_id", "started_at", "route", "task", "selected_by", "endpoint", "streamed",
    "status", "http_status", "failure", "error", "final_model", "final_reported_model",
    "final_fingerprint", "policy_hash", "policy_version", "client_key_id", "confidence",
    "escalations", *TOKENS, "cost_usd", "price_unknown", "latency_ms", "ttft_ms",
    "attempt_count", "metadata", "decision", "prompt", "answer",
)  # fmt: skip
V3_ATTEMPT = (
    "request_id", "seq", "model", "provider", "model_id", "tier", "started_ms", "latency_ms",
    "ttft_ms", "outcome", "failure", "status", "message", "retry_after_s", "reported_model",
    "fingerprint", *TOKENS, "cost_usd", "price_known", "confidence",
)  # fmt: skip


def _tokens(u: Any) -> tuple[Any, ...]:
    return (None,) * 5 if u is None else tuple(getattr(u, t) for t in TOKENS)


def v3_request(r: RequestRecord) -> tuple[Any, ...]:
    """A record as version 3 wrote it (JSON columns as text)."""
    return (
        r.request_id, r.started_at, r.route, r.task, r.selected_by, r.endpoint, r.streamed,
        r.status, r.http_status, r.failure, r.error, r.final_model, r.final_reported_model,
        r.final_fingerprint, r.policy_hash, r.policy_version, r.client_key_id, r.confidence,
        r.escalations, *_tokens(r.usage), r.cost_usd, r.price_unknown, r.latency_ms,
        r.ttft_ms, r.attempt_count, orjson.dumps(r.metadata).decode(),
        None if r.decision is None else orjson.dumps(r.decision).decode(), r.prompt, r.answer,
    )  # fmt: skip


def v3_attempt(rid: str, seq: int, a: Attempt) -> tuple[Any, ...]:
    return (
        rid, seq, a.model, a.provider, a.model_id, a.tier, a.started_ms, a.latency_ms,
        a.ttft_ms, a.outcome, a.failure, a.status, a.message, a.retry_after_s,
        a.reported_model, a.fingerprint, *_tokens(a.usage), a.cost_usd, a.price_known,
        a.confidence,
    )  # fmt: skip


def old_records() -> list[RequestRecord]:
    """Every shape of record, with floats that need all 17 digits to come back the same."""
    records = [*all_records(), realistic(1), realistic(2)]
    odd = records[-1]
    odd.latency_ms, odd.confidence = 0.1 + 0.2, 1 / 3
    odd.attempts[0].latency_ms, odd.attempts[1].cost_usd = 123.45678901234568, 1e-300
    odd.metadata = {"ключ": "значение"}
    return records


def _sql(table: str, columns: tuple[str, ...], mark: Any) -> str:
    marks = ", ".join(mark(i) for i in range(1, len(columns) + 1))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


def make_v3_sqlite(path: Path, records: list[RequestRecord]) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(schema.render(schema.BOOTSTRAP, "sqlite"))
    for version, statements in schema.pending(0, "sqlite", target=V3):
        for statement in statements:
            conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
    conn.executemany(_sql("requests", V3_REQUEST, lambda i: "?"), map(v3_request, records))
    attempts = [v3_attempt(r.request_id, i, a) for r in records for i, a in enumerate(r.attempts)]
    conn.executemany(_sql("attempts", V3_ATTEMPT, lambda i: "?"), reversed(attempts))
    conn.execute(
        "INSERT INTO feedback (request_id, score, label, source, comment, created_at) "
        "VALUES (?, 1.0, 'good', 'human', 'kept', 5.0)",
        (records[0].request_id,),
    )
    conn.close()


async def make_v3_postgres(url: str, records: list[RequestRecord]) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(schema.render(schema.BOOTSTRAP, "postgres"))
        for version, statements in schema.pending(0, "postgres", target=V3):
            for statement in statements:
                await conn.execute(statement)
            await conn.execute("INSERT INTO schema_migrations VALUES ($1, $2)", version, 0.0)
        await conn.executemany(
            _sql("requests", V3_REQUEST, lambda i: f"${i}"), map(v3_request, records)
        )
        attempts = [
            v3_attempt(r.request_id, i, a) for r in records for i, a in enumerate(r.attempts)
        ]
        await conn.executemany(
            _sql("attempts", V3_ATTEMPT, lambda i: f"${i}"), list(reversed(attempts))
        )
        await conn.execute(
            "INSERT INTO feedback (request_id, score, label, source, comment, created_at) "
            "VALUES ($1, 1.0, 'good', 'human', 'kept', 5.0)",
            records[0].request_id,
        )
    finally:
        await conn.close()


async def test_a_version_3_store_upgrades_in_place(store_target: Path | str) -> None:
    records = old_records()
    if isinstance(store_target, Path):
        make_v3_sqlite(store_target, records)
    else:
        await make_v3_postgres(store_target, records)
    store = make_store(store_target)
    await store.open()
    try:
        assert await store.schema_version() == schema.CURRENT_VERSION
        assert await store.count() == len(records)
        kept = {"id": 1, "score": 1.0, "label": "good", "source": "human", "comment": "kept"}
        for i, r in enumerate(records):
            got = await store.get(r.request_id)
            assert got is not None
            feedback = got.pop("feedback")
            assert got == r.to_dict()  # attempts in order, every digit of every float
            assert RequestRecord.from_dict(got) == r
            assert feedback == ([{**kept, "created_at": 5.0}] if i == 0 else [])
        listed = {row["request_id"]: row for row in await store.query(limit=100)}
        assert {k: v["attempt_count"] for k, v in listed.items()} == {
            r.request_id: r.attempt_count for r in records
        }
        # The upgraded store takes new records and feedback as a new one does.
        new = realistic(3)
        await store.write([new])
        assert await store.get(new.request_id) == {**new.to_dict(), "feedback": []}
        assert await store.add_feedback(records[1].request_id, 0.5)
        assert not await store.add_feedback("no-such-request", 0.5)
        assert await tables(store) == {
            "drift_alerts", "feedback", "outcomes", "planner_stats", "requests",
            "schema_migrations", "rollup_minute", "rollup_hour", "rejections_minute",
            "rejections_hour", "policy_traffic", "policies", "analysis_snapshots",
        }  # fmt: skip
    finally:
        await store.close()


async def tables(store: Any) -> set[str]:
    if isinstance(store, PostgresStore):
        async with store.pool.acquire() as conn:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {r[0] for r in rows}
    with sqlite3.connect(store.path) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        # feedback still refers to requests, and the per-route and per-model indexes are back
        assert conn.execute("PRAGMA foreign_key_list(feedback)").fetchone()[2] == "requests"
        indexes = {r[1] for r in conn.execute("PRAGMA index_list(requests)")}
        assert {"requests_started_at", "requests_route", "requests_final_model"} <= indexes
    return {r[0] for r in rows}
