"""What keeping the dashboard's rollups costs the record writer: records per second and CPU
per record through ``RecordWriter`` into SQLite and PostgreSQL, with the rollups (as shipped)
and without them (each store's write as it was before migration 9: SQLite's inserts without
the rollup's upserts, PostgreSQL's one statement without a transaction), side by side,
alternating, in one process.

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

import records as bench
from modelroute.records.record import RequestRecord
from modelroute.records.stores import postgres as pg_module
from modelroute.records.stores import schema
from modelroute.records.stores.postgres import PostgresStore
from modelroute.records.stores.sqlite import SqliteStore, _insert

_OLD_PG_INSERT = pg_module._INSERT.removesuffix(" RETURNING request_id")


class SqliteWithout(SqliteStore):
    """The SQLite write before migration 9: the same rows, no rollup."""

    def _write(self, batch: list[RequestRecord], give_way: bool) -> None:
        rows: list[tuple[Any, ...]] = []
        stats: dict[str, str] = {}
        for r in schema.unique(batch):
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
        payload = await asyncio.to_thread(pg_module._payload, self._encoder, batch)
        async with self.pool.acquire() as conn:
            await conn.execute(_OLD_PG_INSERT, payload.requests, payload.stats)


async def _admin(url: str, sql: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _one(
    kind: str, rollups: bool, records: list[RequestRecord], pg: str
) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        if kind == "sqlite":
            cls = SqliteStore if rollups else SqliteWithout
            return await bench.run(cls(Path(tmp) / "b.db"), Path(tmp) / "spool", records, 500)
        name = f"uidata_rollup_cost_{secrets.token_hex(4)}"
        await _admin(pg, f"CREATE DATABASE {name}")
        url = urlunsplit(urlsplit(pg)._replace(path=f"/{name}"))
        try:
            pcls = PostgresStore if rollups else PostgresWithout
            return await bench.run(pcls(url), Path(tmp) / "spool", records, 500)
        finally:
            await _admin(pg, f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    now = time.time()
    for run in range(args.repeat):
        for kind in ("sqlite", "postgres"):
            for rollups in (False, True):
                records = [bench.sample(i, now + run * 3600) for i in range(args.records)]
                rate, cpu = await _one(kind, rollups, records, args.pg)
                label = f"{kind} {'with' if rollups else 'without'} rollups"
                print(f"run {run + 1} {label:28} {rate:>9,.0f} records/s  {cpu:5.1f} us CPU/record")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
