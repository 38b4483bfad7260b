"""Filling the dashboard's rollups from stored rows, at scale: migration 9 run on a copy of a
store taken back to schema version 8, ``Store.rebuild_rollups``, and the per-page Python
aggregation the stores shipped first (rows read in time order a page at a time, added up in
``rollups.Rollup``, one upsert per touched key), side by side, on SQLite and PostgreSQL; the
rollups each makes are compared (exactly, but for float sums: relative 1e-9).

    python bench/rollup_backfill.py --sqlite /tmp/synth-1m.db \\
        --pg postgresql://postgres@127.0.0.1:5432/synth_1m [--repeat 1]

Both targets are existing stores (``synth_store.py --records 1000000`` makes one); they are
only read: the migration runs on a copy (a file copy; ``CREATE DATABASE ... TEMPLATE``), and
the rebuilds write into that copy, which is removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import secrets
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson

from modelroute.records import rollups
from modelroute.records.rollups import Rollup
from modelroute.records.stores.postgres import PostgresStore
from modelroute.records.stores.sqlite import SqliteStore

_V9_TABLES = (
    "rollup_minute", "rollup_hour", "rejections_minute", "rejections_hour", "policy_traffic",
    "policies", "analysis_snapshots",
)  # fmt: skip
_V9_INDEXES = ("requests_status", "outcomes_request_id")
_SOURCE = {
    "sqlite": "started_at, route, final_model, status, latency_ms, cost_usd, decision_reason, "
    "policy_hash, json_extract(body, '$[8]')",
    "postgres": "started_at, route, final_model, status, latency_ms, cost_usd, decision_reason, "
    "policy_hash, body ->> 8",
}
_PAGE = 20_000
_KEYS = {
    "rollup_minute": 3, "rollup_hour": 3, "rejections_minute": 4, "rejections_hour": 4,
    "policy_traffic": 1,
}  # fmt: skip
_COLUMNS = {
    "rollup_minute": rollups.ROLLUP_COLUMNS, "rollup_hour": rollups.ROLLUP_COLUMNS,
    "rejections_minute": rollups.REJECTION_COLUMNS, "rejections_hour": rollups.REJECTION_COLUMNS,
    "policy_traffic": rollups.POLICY_COLUMNS,
}  # fmt: skip


# --- the first backfill: pages of rows added up in Python -----------------------------------


def _upserts(dialect: str, mark: Callable[[int], str]) -> dict[str, str]:
    out = {}
    for name, columns in _COLUMNS.items():
        values = f"VALUES ({', '.join(mark(i + 1) for i in range(len(columns)))})"
        out[name] = rollups.upsert_sql(name, columns, _KEYS[name], values, dialect=dialect)
    return out


def _tables(rollup: Rollup) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "rollup_minute": rollup.rows("minute"),
        "rollup_hour": rollup.rows("hour"),
        "rejections_minute": rollup.rejection_rows("minute"),
        "rejections_hour": rollup.rejection_rows("hour"),
        "policy_traffic": rollup.policy_rows(),
    }


def python_sqlite(path: Path) -> int:
    db = sqlite3.connect(path, isolation_level=None)
    upserts = _upserts("sqlite", lambda _: "?")
    read = (
        f"SELECT request_id, {_SOURCE['sqlite']} FROM requests WHERE (started_at, request_id) "
        "> (?, ?) ORDER BY started_at, request_id LIMIT ?"
    )
    after: tuple[float, str] = (-math.inf, "")
    total = 0
    db.execute("BEGIN IMMEDIATE")
    for name in _COLUMNS:
        db.execute(f"DELETE FROM {name}")
    while page := db.execute(read, (*after, _PAGE)).fetchall():
        for name, rows in _tables(Rollup().extend(row[1:] for row in page)).items():
            db.executemany(upserts[name], rows)
        total += len(page)
        after = (page[-1][1], page[-1][0])
    db.execute("COMMIT")
    db.close()
    return total


def _postgres_statement() -> str:
    """The shipped one statement adding a page's rollup: each table's rows as one JSON
    parameter, turned into typed rows by ``json_populate_recordset``."""
    parts = []
    for n, (name, columns) in enumerate(_COLUMNS.items(), 1):
        values = (
            f"SELECT {', '.join(columns)} FROM json_populate_recordset(NULL::{name}, ${n}::json)"
        )
        upsert = rollups.upsert_sql(name, columns, _KEYS[name], values, dialect="postgres")
        parts.append(upsert if name == "policy_traffic" else f"{name} AS ({upsert})")
    return f"WITH {', '.join(parts[:-1])} {parts[-1]}"


def _payload(rollup: Rollup) -> list[str]:
    return [
        orjson.dumps([dict(zip(_COLUMNS[name], v, strict=True)) for v in rows]).decode()
        for name, rows in _tables(rollup).items()
    ]


async def python_postgres(url: str) -> int:
    conn = await asyncpg.connect(url)
    add = _postgres_statement()
    read = (
        f"SELECT request_id, {_SOURCE['postgres']} FROM requests WHERE (started_at, request_id) "
        "> ($1, $2) ORDER BY started_at, request_id LIMIT $3"
    )
    after: tuple[float, str] = (-math.inf, "")
    total = 0
    try:
        async with conn.transaction():
            await conn.execute(f"TRUNCATE {', '.join(_COLUMNS)}")
            while page := await conn.fetch(read, *after, _PAGE):
                rollup = Rollup().extend(tuple(row)[1:] for row in page)
                await conn.execute(add, *await asyncio.to_thread(_payload, rollup))
                total += len(page)
                after = (page[-1][1], page[-1][0])
    finally:
        await conn.close()
    return total


# --- copies at version 8 ----------------------------------------------------------------------

_DOWNGRADE = (
    *(f"DROP TABLE {t}" for t in _V9_TABLES),
    *(f"DROP INDEX {i}" for i in _V9_INDEXES),
    "DELETE FROM schema_migrations WHERE version = 9",
)


def sqlite_v8(source: str, copy: Path) -> None:
    shutil.copyfile(source, copy)
    db = sqlite3.connect(copy, isolation_level=None)
    for statement in _DOWNGRADE:
        db.execute(statement)
    db.close()


def _db_url(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(_db_url(url, "postgres"))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def postgres_v8(source: str, name: str) -> str:
    template = urlsplit(source).path.lstrip("/")
    await _admin(source, f"CREATE DATABASE {name} TEMPLATE {template}")
    url = _db_url(source, name)
    conn = await asyncpg.connect(url)
    try:
        for statement in _DOWNGRADE:
            await conn.execute(statement)
        await conn.execute("VACUUM ANALYZE requests")
    finally:
        await conn.close()
    return url


# --- comparing ---------------------------------------------------------------------------------


async def snapshot(store: Any) -> dict[str, dict[tuple[Any, ...], tuple[Any, ...]]]:
    out = {}
    for name, columns in _COLUMNS.items():
        rows = await store.read_sql(f"SELECT {', '.join(columns)} FROM {name}")
        key = _KEYS[name]
        out[name] = {tuple(r[:key]): tuple(r[key:]) for r in rows}
    return out


def differences(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    out = []
    for name in _COLUMNS:
        if a[name].keys() != b[name].keys():
            out.append(f"{name}: keys differ ({len(a[name])} vs {len(b[name])})")
            continue
        for key, values in a[name].items():
            for x, y in zip(values, b[name][key], strict=True):
                same = x == y or (
                    isinstance(x, float) and math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-12)
                )
                if not same:
                    out.append(f"{name} {key}: {values} vs {b[name][key]}")
                    break
    return out


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, float, Any]:
    """Wall seconds, this process's CPU seconds, and the result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = await call()
    return time.perf_counter() - wall, time.process_time() - cpu, result


async def one_store(kind: str, target: str, repeat: int, tmp: Path) -> None:
    for run in range(repeat):
        if kind == "sqlite":
            copy = tmp / "v8.db"
            sqlite_v8(target, copy)
            store: Any = SqliteStore(copy)
            python: Callable[[], Awaitable[int]] = partial(asyncio.to_thread, python_sqlite, copy)
            name = ""
        else:
            name = f"migrate9_bench_{secrets.token_hex(4)}"
            url = await postgres_v8(target, name)
            store = PostgresStore(url)
            python = partial(python_postgres, url)
        try:
            wall, cpu, _ = await timed(store.open)  # migration 9 (with its indexes)
            print(f"{kind} run {run + 1}: migration 8 -> 9      {wall:7.1f} s  (CPU {cpu:.1f} s)")
            count = await store.count()
            migrated = await snapshot(store)
            wall, cpu, n = await timed(store.rebuild_rollups)
            print(f"{kind} run {run + 1}: rebuild_rollups       {wall:7.1f} s  (CPU {cpu:.1f} s)")
            rebuilt = await snapshot(store)
            wall, cpu, m = await timed(python)
            print(f"{kind} run {run + 1}: per-page Python path  {wall:7.1f} s  (CPU {cpu:.1f} s)")
            reference = await snapshot(store)
            assert n == m == count, (n, m, count)
            sizes = ", ".join(f"{t} {len(rows):,}" for t, rows in reference.items())
            print(f"{kind}: {count:,} records; rollup rows: {sizes}")
            for label, got in (("migration", migrated), ("rebuild", rebuilt)):
                diff = differences(got, reference)
                print(f"{kind}: {label} vs Python path: {'identical' if not diff else diff[:5]}")
        finally:
            await store.close()
            if name:
                await _admin(target, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", help="an existing SQLite store (copied, never written)")
    parser.add_argument("--pg", help="an existing PostgreSQL store's URL (used as a template)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"load average at the start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(dir=Path(args.sqlite).parent if args.sqlite else None) as t:
        if args.sqlite:
            await one_store("sqlite", args.sqlite, args.repeat, Path(t))
        if args.pg:
            await one_store("postgres", args.pg, args.repeat, Path(t))
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
