"""Record writing throughput: records per second sustained through RecordWriter into SQLite and
into PostgreSQL, side by side in one run.

Each record is what the router makes for a request that fell back once: two attempts (one
rate-limited, one that answered, with usage and cost), a decision with steps and rejections,
metadata and a short prompt and answer. Records are built before the clock starts (the router
builds them from values it holds anyway); the clock runs from the first ``submit`` until
``close`` returns, that is until every record is committed. The producer submits as fast as
the queue takes them without overflowing (overflow would measure the spool instead).

    python bench/records.py [--records 200000] [--batch-size 500] [--pg postgresql://...]

Goals: >= 20,000 records/s into SQLite, >= 10,000 records/s into PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import secrets
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from modelroute.records.ids import uuid7
from modelroute.records.record import Attempt, RequestRecord
from modelroute.records.stores.base import Store
from modelroute.records.stores.postgres import PostgresStore
from modelroute.records.stores.sqlite import SqliteStore
from modelroute.records.writer import RecordWriter
from modelroute.types import Usage

GOALS = {"sqlite": 20_000, "postgres": 10_000}


def sample(i: int, now: float) -> RequestRecord:
    usage = Usage(1200 + i % 50, 180, cached_input_tokens=1024, reasoning_tokens=40)
    return RequestRecord(
        request_id=str(uuid7()),
        started_at=now + i * 1e-4,
        route=f"route-{i % 8}", task="classify", selected_by="header",
        metadata={"tenant": f"t{i % 7}", "env": "prod"},
        policy_hash="sha256:" + "ab" * 32, policy_version="2026-11-01", client_key_id="k_3f9a",
        decision={
            "route": f"route-{i % 8}", "strategy": "cheapest-qualified",
            "steps": [{"tier": 0, "models": ["fast", "steady"], "est_cost_usd": 0.0011,
                       "est_latency_ms": 900.0}],
            "rejections": [{"model": "large", "reason": "cost_ceiling", "est": 0.02}],
        },
        attempts=[
            Attempt("fast", "openai", "gpt-4o-mini", 0, 0.4, latency_ms=812.5,
                    outcome="failed", failure="rate_limited", status=429,
                    message="rate limit reached", retry_after_s=2.0),
            Attempt("steady", "anthropic", "claude-3-5-haiku", 0, 815.0, latency_ms=1432.25,
                    ttft_ms=301.0, reported_model="claude-3-5-haiku-20241022", usage=usage,
                    cost_usd=0.00123, confidence=0.91),
        ],
        final_model="steady", final_reported_model="claude-3-5-haiku-20241022",
        confidence=0.91, usage=usage, cost_usd=0.00123, latency_ms=2250.0 + i % 100,
        ttft_ms=1117.0, prompt=f"user: my invoice is wrong, order {i}", answer="billing",
    )  # fmt: skip


async def run(
    store: Store, spool: Path, records: list[RequestRecord], batch: int
) -> tuple[float, float]:
    """Records per second (wall clock) and this process's CPU microseconds per record."""
    await store.open()
    writer = RecordWriter(store, spool, batch_size=batch)
    await writer.start()
    room = 10_000 - 2 * batch  # stay under the queue bound: measure the store, not the spool
    started, cpu = time.perf_counter(), time.process_time()
    for i in range(0, len(records), batch):
        while writer.queue_depth > room:
            await asyncio.sleep(0.001)
        for record in records[i : i + batch]:
            writer.submit(record)
        await asyncio.sleep(0)
    await writer.close()
    elapsed = time.perf_counter() - started
    cpu_us = (time.process_time() - cpu) / len(records) * 1e6
    count = await store.count()
    await store.close()
    assert count == len(records), f"stored {count} of {len(records)}"
    assert writer.spooled == 0, f"{writer.spooled} records went through the spool"
    return len(records) / elapsed, cpu_us


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="admin URL; a scratch database is created and dropped")  # fmt: skip
    parser.add_argument("--db-prefix", default="modelroute_bench",
                        help="the scratch database's name prefix")  # fmt: skip
    args = parser.parse_args()
    now = time.time()
    records = [sample(i, now) for i in range(args.records)]
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"python {platform.python_version()} on {platform.machine()}; {args.records:,} "
          f"records (2 attempts + decision each), batch {args.batch_size}")  # fmt: skip
    rates: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        rates["sqlite"] = await run(
            SqliteStore(Path(tmp) / "bench.db"), Path(tmp) / "spool-s", records, args.batch_size
        )
        name = f"{args.db_prefix}_{secrets.token_hex(4)}"
        admin = await asyncpg.connect(args.pg)
        await admin.execute(f"CREATE DATABASE {name}")
        try:
            url = urlunsplit(urlsplit(args.pg)._replace(path=f"/{name}"))
            fresh = [RequestRecord.from_dict(r.to_dict()) for r in records]
            rates["postgres"] = await run(
                PostgresStore(url), Path(tmp) / "spool-p", fresh, args.batch_size
            )
        finally:
            await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
            await admin.close()
    met = True
    # CPU per record is the figure to compare across runs on a shared machine: the wall-clock
    # rate also counts time this process waited for a core.
    for kind, (rate, cpu_us) in rates.items():
        ok = rate >= GOALS[kind]
        met &= ok
        print(f"{kind:9} {rate:>9,.0f} records/s  {cpu_us:5.1f} us CPU/record (this process)"
              f"   goal >= {GOALS[kind]:,}/s: {'met' if ok else 'NOT met'}")  # fmt: skip
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
