"""The least SQLite can charge for storing a request record: CPU per row for the inserts alone,
rows already encoded, into the ``requests`` table with only its primary key, with the narrow
indexes the record explorer reads as well, and with every index of today's schema (the two
covering indexes the audit and drift read added). Side by side, repeated, in one process, on
the store's own settings (WAL, ``synchronous=NORMAL``, 50 rows per statement, a transaction per
batch of 500).

    .venv/bin/python bench/record_floor.py [--from STORE.db] [--rounds 3]

``--from`` takes the rows a gateway wrote (``bench/recording_ab.py --floor`` passes its
records-on store), so the bytes per row are the gateway's; without it the rows are
``bench/records.py``'s records (two attempts, a decision, usage), and the encoding of those
records into rows (``RowEncoder.row``, in Python) is measured too.

A table is filled with 100,000 rows before the 40,000 that are timed, so the B-trees are deep
enough to descend. CPU time is the inserting thread's own (``time.thread_time``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from itertools import chain
from pathlib import Path
from typing import Any

import records as bench
from modelroute.records.ids import uuid7
from modelroute.records.stores.body import REQUEST_COLUMNS
from modelroute.records.stores.sqlite import SqliteStore
from modelroute.records.stores.sqlite_base import insert_sql

PREFILL, TIMED, BATCH, PER_STATEMENT = 100_000, 40_000, 500, 50
COVERING = ("requests_task_traffic", "requests_drift")
Row = tuple[Any, ...]


async def schema() -> tuple[str, dict[str, str]]:
    """Today's ``requests`` table and its indexes (name -> statement), from a fresh store."""
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "schema.db")
        await store.open()
        await store.close()
        with sqlite3.connect(Path(tmp) / "schema.db") as db:
            (table,) = db.execute(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'requests'"
            ).fetchone()
            indexes = dict(
                db.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
                    "AND tbl_name = 'requests' AND sql IS NOT NULL"
                ).fetchall()
            )
    return table, indexes


def stored_rows(path: str) -> list[Row]:
    with sqlite3.connect(path) as db:
        return db.execute(f"SELECT {', '.join(REQUEST_COLUMNS)} FROM requests").fetchall()


async def synthetic_rows(n: int) -> tuple[list[Row], float]:
    """``bench/records.py``'s records encoded by the store, and the encoding's CPU per row."""
    now = time.time()
    records = [bench.sample(i, now) for i in range(n)]
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "encode.db")
        await store.open()

        def encode() -> tuple[list[Row], float]:
            stats: dict[str, str] = {}
            started = time.thread_time()
            rows = [store._encoder.row(r, stats) for r in records]
            return rows, (time.thread_time() - started) / n * 1e6

        rows, cpu_us = await store._call(encode)
        await store.close()
    return rows, cpu_us


def enough(rows: list[Row], n: int) -> list[Row]:
    """``n`` rows cycled from ``rows``, each repeat with a fresh request id and a later time,
    so every row is a new key in time order, as a gateway writes them."""
    at, ids = REQUEST_COLUMNS.index("started_at"), iter(lambda: str(uuid7()), None)
    span = max(r[at] for r in rows) - min(r[at] for r in rows) + 1.0
    out: list[Row] = []
    for lap in range(-(-n // len(rows))):
        for r in rows:
            if len(out) == n:
                return out
            row = list(r)
            if lap:
                row[0], row[at] = next(ids), row[at] + lap * span
            out.append(tuple(row))
    return out


def insert_cpu_us(rows: list[Row], table: str, indexes: Sequence[str]) -> float:
    """CPU per row of inserting ``rows[PREFILL:]`` into a table that holds ``rows[:PREFILL]``."""
    many = insert_sql("requests", REQUEST_COLUMNS, "request_id", PER_STATEMENT)
    with tempfile.TemporaryDirectory() as tmp:
        db = sqlite3.connect(Path(tmp) / "floor.db", isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(table)
        for statement in indexes:
            db.execute(statement)

        def insert(part: list[Row]) -> None:
            for b in range(0, len(part), BATCH):
                batch = part[b : b + BATCH]
                db.execute("BEGIN IMMEDIATE")
                for i in range(0, len(batch), PER_STATEMENT):
                    db.execute(many, list(chain.from_iterable(batch[i : i + PER_STATEMENT])))
                db.execute("COMMIT")

        insert(rows[:PREFILL])
        started = time.thread_time()
        insert(rows[PREFILL:])
        cpu = time.thread_time() - started
        db.close()
    return cpu / (len(rows) - PREFILL) * 1e6


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", help="a SQLite record store a gateway wrote")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="end with the least figures as JSON")
    args = parser.parse_args()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    table, indexes = await schema()
    narrow = [sql for name, sql in indexes.items() if name not in COVERING]
    shapes = {
        "primary key only": [],
        f"+ {len(narrow)} narrow indexes": narrow,
        "+ 2 covering indexes (today)": list(indexes.values()),
    }
    if args.source:
        source = stored_rows(args.source)
        print(f"rows: {len(source):,} written by a gateway to {args.source}")
        encode_us = None
    else:
        source, encode_us = await synthetic_rows(PREFILL + TIMED)
        print("rows: bench/records.py's records, encoded by the store")
    rows = enough(source, PREFILL + TIMED)
    body = REQUEST_COLUMNS.index("body")
    size = sum(len(r[body]) for r in rows) / len(rows)
    print(f"body: {size:,.0f} bytes per row on average")
    results: dict[str, list[float]] = {name: [] for name in shapes}
    for n in range(args.rounds):
        if encode_us is not None and n:
            encode_us = min(encode_us, (await synthetic_rows(20_000))[1])
        for name, statements in shapes.items():
            results[name].append(insert_cpu_us(rows, table, statements))
            print(f"round {n + 1} {name:30} {results[name][-1]:6.1f} us CPU/row", flush=True)
    print("least of the rounds (us CPU per row):")
    for name, values in results.items():
        print(f"  insert, {name:30} {min(values):6.1f}")
    if encode_us is not None:
        print(f"  encoding a record into its row     {encode_us:6.1f}")
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        print(json.dumps({name: min(values) for name, values in results.items()}))


if __name__ == "__main__":
    asyncio.run(main())
