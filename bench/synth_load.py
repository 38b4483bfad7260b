"""Bulk loading for ``synth_store.py``: the store's own ``open`` creates the schema, the
secondary indexes of ``requests`` are dropped and created again after the load with their own
definitions; SQLite takes one ``executemany`` per chunk with its journal off, PostgreSQL one
``COPY`` (text format) per chunk while the next chunk is generated; outcomes go through
``Store.add_outcomes``.
"""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))


from modelroute.outcomes import Outcome
from modelroute.records.stores import open_store
from modelroute.records.stores.body import REQUEST_COLUMNS

# --- writing -------------------------------------------------------------------------------


async def _migrated(url: str) -> int:
    """Open the store once (its migrations create every table); how many records it has."""
    store = open_store(url)
    await store.open()
    try:
        return await store.count()
    finally:
        await store.close()


async def _add_outcomes(url: str, outcomes: list[Outcome], batch: int = 50_000) -> int:
    store = open_store(url)
    await store.open()
    try:
        added = 0
        for i in range(0, len(outcomes), batch):
            added += await store.add_outcomes(outcomes[i : i + batch])
        return added
    finally:
        await store.close()


def write_sqlite(
    path: str, parts: Iterator[Any], stats_rows: Mapping[str, str], progress: Callable[[int], None]
) -> list[Outcome]:
    db = sqlite3.connect(path, isolation_level=None)
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'requests' "
        "AND sql IS NOT NULL"
    ).fetchall()
    db.execute("PRAGMA journal_mode = OFF")  # a bulk load: rebuilt from scratch if it fails
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -1000000")
    for name, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    db.executemany(
        "INSERT INTO planner_stats VALUES (?, ?) ON CONFLICT DO NOTHING",
        stats_rows.items(),
    )
    insert = (
        f"INSERT INTO requests ({', '.join(REQUEST_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})"
    )
    outcomes: list[Outcome] = []
    done = 0
    for part in parts:
        db.execute("BEGIN")
        db.executemany(insert, part.rows)
        db.execute("COMMIT")
        outcomes += part.outcomes
        done += len(part.rows)
        progress(done)
    for _, sql in indexes:
        db.execute(sql)
    db.execute("PRAGMA journal_mode = WAL")
    db.close()
    return outcomes


def _copy_text(rows: list[tuple[Any, ...]]) -> bytes:
    """Rows in COPY's text format: tab-separated, \\N for NULL, backslashes doubled (JSON and
    the other columns hold no raw tab or newline)."""
    lines = []
    for row in rows:
        fields = []
        for v in row:
            if v is None:
                fields.append("\\N")
            elif isinstance(v, str):
                fields.append(v.replace("\\", "\\\\"))
            elif isinstance(v, bool):
                fields.append("t" if v else "f")
            else:
                fields.append(repr(v) if isinstance(v, float) else str(v))
        lines.append("\t".join(fields))
    lines.append("")
    return "\n".join(lines).encode()


async def _ensure_database(url: str) -> None:
    import asyncpg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def write_postgres(
    url: str, parts: Iterator[Any], stats_rows: Mapping[str, str], progress: Callable[[int], None]
) -> list[Outcome]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = 'requests' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint)"
        )
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        await conn.executemany(
            "INSERT INTO planner_stats VALUES ($1, $2::jsonb) ON CONFLICT DO NOTHING",
            list(stats_rows.items()),
        )
        outcomes: list[Outcome] = []
        done = 0
        pending: asyncio.Task[Any] | None = None
        it = parts
        while True:
            part = await asyncio.to_thread(next, it, None)
            if part is None:
                break
            data = await asyncio.to_thread(_copy_text, part.rows)
            if pending is not None:
                await pending
            pending = asyncio.create_task(_copy(conn, data))
            outcomes += part.outcomes
            done += len(part.rows)
            progress(done)
        if pending is not None:
            await pending
        for row in indexes:
            await conn.execute(row["indexdef"])
        # what autovacuum does to an insert-only table: statistics, and the visibility map
        # that lets index-only scans skip the table
        await conn.execute("VACUUM ANALYZE requests")
    finally:
        await conn.close()
    return outcomes


async def _copy(conn: Any, data: bytes) -> None:
    import io

    await conn.copy_to_table(
        "requests", source=io.BytesIO(data), columns=list(REQUEST_COLUMNS), format="text"
    )
