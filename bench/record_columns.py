"""What the audit's columns cost the record writer: CPU per record written through
``RecordWriter`` into SQLite for labelled records (the task key is the label), unlabelled ones
(the key is the prompt template's fingerprint, computed per record) and unlabelled ones
without the covering index ``requests_task_traffic`` (dropped after the store is created), side
by side, repeated, in one process.

    python bench/record_columns.py [--records 60000] [--repeat 2]

The records are ``bench/records.py``'s (two attempts, a decision, usage); the unlabelled ones
carry a templated prompt with six values to mask (a ticket number, an email, a date, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import records as bench
from modelroute.records.record import RequestRecord
from modelroute.records.stores.sqlite import SqliteStore


def _records(n: int, labelled: bool) -> list[RequestRecord]:
    now = time.time()
    out = [bench.sample(i, now) for i in range(n)]
    if not labelled:
        for i, r in enumerate(out):
            r.task = None
            r.prompt = (
                "system: Classify the support ticket as billing, outage or other.\n"
                f"user: Ticket #{i} from user{i}@example.com on 2025-01-{i % 28 + 1:02d}: "
                f'"my invoice {i} of {i % 90 + 10}.50 EUR is wrong"'
            )
    return out


async def _one(n: int, labelled: bool, index: bool) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.db"
        store = SqliteStore(path)
        if not index:
            await store.open()
            await store.close()
            with sqlite3.connect(path) as conn:
                conn.execute("DROP INDEX requests_task_traffic")
        return await bench.run(store, Path(tmp) / "spool", _records(n, labelled), 500)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    cases = (("labelled", True, True), ("unlabelled", False, True),
             ("unlabelled, no covering index", False, False))  # fmt: skip
    for run in range(args.repeat):
        for name, labelled, index in cases:
            rate, cpu_us = await _one(args.records, labelled, index)
            print(f"run {run + 1} {name:31} {rate:>9,.0f} records/s  {cpu_us:5.1f} us CPU/record")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
