"""What a record costs the writing process by batch size: ``Store.write`` of batches of each
size, into SQLite and into PostgreSQL, the sizes alternating round by round in one run.

The figure is this process's CPU time per record (``time.process_time``, all threads: the
SQLite store's own thread included), with the records built before the clock starts (as
``bench/records.py`` builds them). It is what the writer's ``flush_size`` trades against the
length of a batch: every batch has fixed costs (for SQLite the hand-off to the store's
thread, a transaction, the rollups' upserts; for PostgreSQL its round trips, each some work
for the event loop), spread over fewer records when batches are small.

    .venv/bin/python bench/store_batch.py [--sizes 64,500] [--rounds 6] [--records 4000]
        [--pg postgresql://...]
"""

from __future__ import annotations

import argparse
import asyncio
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from modelroute.records.record import RequestRecord
from modelroute.records.stores.base import Store
from modelroute.records.stores.postgres import PostgresStore
from modelroute.records.stores.sqlite import SqliteStore
from records import sample


async def cpu_per_record(store: Store, records: list[RequestRecord], size: int) -> float:
    """CPU microseconds per record of writing ``records`` in batches of ``size``."""
    started = time.process_time()
    for i in range(0, len(records), size):
        await store.write(records[i : i + size], backlog=1)  # no yields: as under load
    return (time.process_time() - started) / len(records) * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="64,500")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--records", type=int, default=4000, help="per size, store and round")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="admin URL; a scratch database is created and dropped")  # fmt: skip
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    name = f"modelroute_batch_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(args.pg)
    await admin.execute(f"CREATE DATABASE {name}")
    samples: dict[tuple[str, int], list[float]] = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            stores: dict[str, Store] = {
                "sqlite": SqliteStore(Path(tmp) / "bench.db"),
                "postgres": PostgresStore(urlunsplit(urlsplit(args.pg)._replace(path=f"/{name}"))),
            }
            for store in stores.values():
                await store.open()
            now, n = time.time(), 0
            for index in range(args.rounds):
                order = sizes if index % 2 == 0 else sizes[::-1]
                for kind, store in stores.items():
                    for size in order:
                        records = [sample(n + i, now) for i in range(args.records)]
                        n += args.records
                        took = await cpu_per_record(store, records, size)
                        samples.setdefault((kind, size), []).append(took)
            for store in stores.values():
                await store.close()
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()
    print(
        f"Store.write, {args.records} records per size, store and round, {args.rounds} "
        "alternating rounds; CPU us per record (this process, all threads), median and per round"
    )
    for (kind, size), values in samples.items():
        per = ", ".join(f"{v:.1f}" for v in values)
        print(f"  {kind:9} batch {size:4}  {statistics.median(values):6.1f}   [{per}]")


if __name__ == "__main__":
    asyncio.run(main())
