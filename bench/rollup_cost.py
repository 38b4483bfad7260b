"""What keeping the dashboard's rollups costs the record writer: records per second and CPU
per record through ``RecordWriter`` into SQLite and PostgreSQL, with the rollups (as shipped)
and without them (each store's write as it was before migration 9: SQLite's inserts without
the rollup's upserts, PostgreSQL's one statement without the rollup), side by side,
alternating, in one process. PostgreSQL also runs the rollups' first write: a transaction of
two statements (the insert returning the ids it stored, then the batch's rollup, added up in
Python, as JSON rows upserted), beside the shipped one statement (the same rollup upserted in
the insert's statement when every record is new). For PostgreSQL the server's CPU per record
is printed too (its backends for the scratch database, from /proc: this machine only).

    python bench/rollup_cost.py [--records 60000] [--repeat 2] [--pg postgresql://...]

The records are ``bench/records.py``'s (two attempts, a decision with a rejection, eight
routes), 10,000 a second of simulated time, written in batches of 500.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import orjson
from rollup_backfill import _payload as rollup_payload
from rollup_backfill import _postgres_statement

import records as bench
from modelroute.records import rollups
from modelroute.records.record import RequestRecord
from modelroute.records.stores import postgres_write as pg_write
from modelroute.records.stores.body import REQUEST_COLUMNS
from modelroute.records.stores.common import unique
from modelroute.records.stores.postgres import PostgresStore
from modelroute.records.stores.sqlite import SqliteStore, _insert

_COLS = ", ".join(REQUEST_COLUMNS)
_OLD_PG_INSERT = (
    "WITH stats AS (INSERT INTO planner_stats (stats_id, stats) SELECT stats_id, stats "
    "FROM json_populate_recordset(NULL::planner_stats, $2::json) "
    "ON CONFLICT (stats_id) DO NOTHING) "
    f"INSERT INTO requests ({_COLS}) SELECT {_COLS} "
    "FROM json_populate_recordset(NULL::requests, $1::json) ON CONFLICT (request_id) DO NOTHING"
)
_REASON = REQUEST_COLUMNS.index("decision_reason")


class SqliteWithout(SqliteStore):
    """The SQLite write before migration 9: the same rows, no rollup."""

    def _write(self, batch: list[RequestRecord], give_way: bool) -> None:
        rows: list[tuple[Any, ...]] = []
        stats: dict[str, str] = {}
        for r in unique(batch):
            rows.append(self._encoder.row(r, stats))
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if stats:
                db.executemany(
                    "INSERT INTO planner_stats VALUES (?, ?) ON CONFLICT (stats_id) DO NOTHING",
                    stats.items(),
                )
            _insert(db, "requests", rows, give_way)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise


class PostgresWithout(PostgresStore):
    """The PostgreSQL write before migration 9: one statement, no rollup."""

    async def write(self, batch: list[RequestRecord], *, backlog: int = 0) -> None:
        if not batch:
            return
        payload = await asyncio.to_thread(pg_write.batch_payload, self._encoder, batch)
        async with self.pool.acquire() as conn:
            await conn.execute(_OLD_PG_INSERT, payload.requests, payload.stats)


class PostgresTwoStatements(PostgresStore):
    """The PostgreSQL write of the rollups' first version: the insert returning the ids it
    stored, then (every record new) the batch's rollup added up in Python, one statement of
    JSON rows, in one transaction."""

    async def write(self, batch: list[RequestRecord], *, backlog: int = 0) -> None:
        if not batch:
            return
        payload, rollup = await asyncio.to_thread(self._encode, batch)
        async with self.pool.acquire() as conn, conn.transaction():
            stored = await conn.fetch(_OLD_PG_INSERT + " RETURNING request_id", *payload)
            assert len(stored) == len(batch), "the benchmark's batches are all new"
            await conn.execute(_ADD_ROLLUP, *rollup)

    def _encode(self, batch: list[RequestRecord]) -> tuple[tuple[str, str], list[str]]:
        """The first version's ``_payload``: rows as JSON, and their rollup."""
        requests: list[dict[str, Any]] = []
        stats: dict[str, str] = {}
        added = rollups.Rollup()
        for record in unique(batch):
            values = self._encoder.row(record, stats)
            added.add(rollups.contribution(record, values[_REASON]))
            row = dict(zip(REQUEST_COLUMNS, values, strict=True))
            row["body"] = orjson.Fragment(row["body"])
            requests.append(pg_write.finite(row, pg_write.FLOATS))
        planner = [{"stats_id": k, "stats": orjson.Fragment(v)} for k, v in stats.items()]
        encoded = (orjson.dumps(requests).decode(), orjson.dumps(planner).decode())
        return encoded, rollup_payload(added)


_ADD_ROLLUP = _postgres_statement()


_TICK = os.sysconf("SC_CLK_TCK")


async def _backends_cpu_s(store: PostgresStore) -> float:
    """CPU seconds the server's processes for the store's database have used (the pool's
    backends: every write's parsing, inserting and adding up happens there)."""
    async with store.pool.acquire() as conn:
        pids = await conn.fetch(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        )
    total = 0
    for (pid,) in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICK


def _measured(cls: type[PostgresStore], into: list[float]) -> type[PostgresStore]:
    """``cls`` noting its backends' CPU seconds in ``into`` when it closes."""

    async def close(self: PostgresStore) -> None:
        if self._pool is not None:
            into.append(await _backends_cpu_s(self))
        await cls.close(self)

    return type(f"Measured{cls.__name__}", (cls,), {"close": close})


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


_STORES: dict[tuple[str, str], type[Any]] = {
    ("sqlite", "without rollups"): SqliteWithout,
    ("sqlite", "with rollups"): SqliteStore,
    ("postgres", "without rollups"): PostgresWithout,
    ("postgres", "rollups, 2 statements"): PostgresTwoStatements,
    ("postgres", "rollups, 1 statement"): PostgresStore,
}


async def _one(
    kind: str, variant: str, records: list[RequestRecord], pg: str, prefix: str
) -> tuple[float, float, float | None]:
    """Records per second, this process's CPU us per record, the server's (PostgreSQL)."""
    cls = _STORES[(kind, variant)]
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "sqlite":
            rate, cpu = await bench.run(cls(Path(tmp) / "b.db"), Path(tmp) / "spool", records, 500)
            return rate, cpu, None
        name = f"{prefix}_{secrets.token_hex(4)}"
        await _admin(pg, f"CREATE DATABASE {name}")
        url = urlunsplit(urlsplit(pg)._replace(path=f"/{name}"))
        try:
            server: list[float] = []
            store = _measured(cls, server)(url)
            rate, cpu = await bench.run(store, Path(tmp) / "spool", records, 500)
            return rate, cpu, server[0] / len(records) * 1e6
        finally:
            await _admin(pg, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--db-prefix", default="rollup_cost", help="scratch databases' prefix")
    parser.add_argument("--only", choices=("sqlite", "postgres"), help="one store only")
    args = parser.parse_args()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    now = time.time()
    for run in range(args.repeat):
        for kind, variant in _STORES:
            if args.only not in (None, kind):
                continue
            records = [bench.sample(i, now + run * 3600) for i in range(args.records)]
            rate, cpu, server = await _one(kind, variant, records, args.pg, args.db_prefix)
            label = f"{kind} {variant}"
            line = f"run {run + 1} {label:31} {rate:>9,.0f} records/s  {cpu:5.1f} us CPU/record"
            if server is not None:
                line += f", server {server:5.1f} us"
            print(line)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
