"""The PostgreSQL store's migrations: ``schema.py``'s steps, and the ones it runs in Python,
in one transaction under an advisory lock; and the rollups' backfill."""

from __future__ import annotations

import time
from typing import Any

from modelroute.records import rollups
from modelroute.records.stores import legacy, schema
from modelroute.records.stores.body import REQUEST_COLUMNS, RowEncoder, derived_from_row
from modelroute.records.stores.sql import ROLLED_UP, SCHEMA_VERSION

_MIGRATION_LOCK = 0x6D6F64656C  # pg_advisory_xact_lock key: one migrator at a time
_FOLD_PAGE = 1000
_BACKFILL = rollups.backfill_sql("postgres")


async def _fold(conn: Any) -> None:
    """Version 3 to 4: each request row and its attempt rows become the new body column, a
    page at a time (inside the migration's transaction)."""
    encoder, after = RowEncoder(), ""
    body = REQUEST_COLUMNS.index("body")
    while True:
        page = await conn.fetch(
            "SELECT * FROM requests WHERE request_id > $1 ORDER BY request_id LIMIT $2",
            after,
            _FOLD_PAGE,
        )
        if not page:
            return
        ids = [row["request_id"] for row in page]
        attempts: dict[str, list[Any]] = {}
        for a in await conn.fetch("SELECT * FROM attempts WHERE request_id = ANY($1::text[])", ids):
            attempts.setdefault(a["request_id"], []).append(a)
        stats: dict[str, str] = {}
        bodies = [
            encoder.row(legacy.record(row, attempts.get(row["request_id"], ())), stats)[body]
            for row in page
        ]
        await conn.execute(
            "UPDATE requests AS r SET body = v.body::jsonb "
            "FROM unnest($1::text[], $2::text[]) AS v (id, body) WHERE r.request_id = v.id",
            ids,
            bodies,
        )
        after = ids[-1]


async def _derive(conn: Any) -> None:
    """Version 6 to 7: the derived columns of every stored row, a page at a time (inside the
    migration's transaction)."""
    after = ""
    while True:
        page = await conn.fetch(
            "SELECT request_id, final_model, body::text AS body FROM requests "
            "WHERE request_id > $1 ORDER BY request_id LIMIT $2",
            after,
            _FOLD_PAGE,
        )
        if not page:
            return
        values = list(zip(*(derived_from_row(row) for row in page), strict=True))
        await conn.execute(
            "UPDATE requests AS r SET task_key = v.task_key, decision_reason = v.reason, "
            "input_tokens = v.i, output_tokens = v.o, cached_input_tokens = v.c, "
            "cache_write_tokens = v.w FROM unnest($1::text[], $2::text[], $3::text[], "
            "$4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) "
            "AS v (id, task_key, reason, i, o, c, w) WHERE r.request_id = v.id",
            [row["request_id"] for row in page],
            *(list(column) for column in values),
        )
        after = page[-1]["request_id"]


async def backfill(conn: Any) -> int:
    """Fill the (empty) rollups from every stored row, set-based (inside the caller's
    transaction); returns how many rows were added up."""
    # One-off aggregates over every row: no JIT (compiling 47 aggregates costs seconds), and
    # room to hash the groups in memory rather than in batches on disk.
    await conn.execute("SET LOCAL jit = off")
    await conn.execute("SET LOCAL work_mem = '256MB'")
    for statement in _BACKFILL:
        await conn.execute(statement)
    return int(await conn.fetchval(ROLLED_UP))


async def migrate(conn: Any, target: int | None = None) -> int:
    """Bring the database to ``target`` (the latest by default); returns the version reached.
    Runs in one transaction under an advisory lock so concurrent openers apply each step once."""
    async with conn.transaction():
        await conn.execute("SET LOCAL statement_timeout = 0")  # an index build may take long
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(schema.render(schema.BOOTSTRAP, "postgres"))
        current = await conn.fetchval(SCHEMA_VERSION)
        for version, statements in schema.pending(current, "postgres", target):
            for statement in statements:
                if statement == schema.FOLD:
                    await _fold(conn)
                elif statement == schema.DERIVE:
                    await _derive(conn)
                elif statement == schema.ROLLUP:
                    await backfill(conn)
                else:
                    await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations VALUES ($1, $2)", version, time.time()
            )
            current = version
    return int(current)
