"""The dashboard's reads at scale: every ``Dashboard`` method timed on a synthetic store of N
records (default 1 million, ``synth_store.py``: 30 days, six routes, outcomes) in SQLite and
PostgreSQL, and what a page's queries take together (goal: 500 ms or less per page).

    python bench/dashboard.py --sqlite /tmp/dash-1m.db \\
        --pg postgresql://postgres@127.0.0.1:5432/uidata_dash_1m --records 1000000

A target that does not exist yet is generated first (the synthetic loader writes rows around
the records writer, so the rollups are then added up once with ``Store.rebuild_rollups``,
which is timed too: it is what migration 9 does to an existing store). The audit and drift
snapshots are computed once (timed: that is the background refresh, never a page). Each
method then runs ``--repeat`` times; the median and the slowest are printed, per store.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth_load import _ensure_database
from synth_store import generate

from modelroute.dashboard import Dashboard
from modelroute.dashboard.reader import default_step
from modelroute.dashboard.snapshots import refresh
from modelroute.policy import load_policy
from modelroute.records.stores import open_store

DAY = 86_400.0


async def _prepare(target: str, records: int, policy_out: Path) -> dict[str, float]:
    if target.startswith(("postgresql://", "postgres://")):
        await _ensure_database(target)
    store = open_store(target)
    await store.open()
    try:
        count = await store.count()
    finally:
        await store.close()
    out: dict[str, float] = {}
    if count == 0:
        started = time.perf_counter()
        await asyncio.to_thread(generate, target, records, 30.0, 1, None, str(policy_out), True)
        out["generate_s"] = time.perf_counter() - started
        store = open_store(target)
        await store.open()
        try:
            started = time.perf_counter()
            await store.rebuild_rollups()
            out["rollup_backfill_s"] = time.perf_counter() - started
        finally:
            await store.close()
    return out


async def _time(fn: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    took = []
    for _ in range(repeat):
        started = time.perf_counter()
        await fn()
        took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took), max(took)


async def _bench(target: str, policy_path: Path, repeat: int) -> None:
    policy = load_policy(policy_path)
    store = open_store(target)
    await store.open()
    try:
        count = await store.count()
        (last,) = await store.read_sql("SELECT MAX(started_at) FROM requests")
        end = float(last[0]) + 1
        started = time.perf_counter()
        await refresh(store, policy, now=end)
        print(f"  {count:,} records; background snapshot refresh (audit + drift): "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip
        dash = Dashboard(store, policy)
        fresh = Dashboard(store, policy, quality_ttl_s=0.0)  # reads outcomes every time
        newest = (await dash.search(limit=1)).rows[0]
        page1 = await dash.search(limit=50)
        versions = await dash.policies()
        cases: list[tuple[str, Callable[[], Awaitable[Any]]]] = [
            ("overview 24 h, 5-min buckets", lambda: dash.overview(end - DAY, end, 300)),
            ("overview 7 d, hourly", lambda: dash.overview(end - 7 * DAY, end, 3600)),
            ("overview 30 d, hourly", lambda: dash.overview(end - 30 * DAY, end, 3600)),
            ("overview 30 d, 3-hourly (default)",
             lambda: dash.overview(end - 30 * DAY, end, default_step(end - 30 * DAY, end))),
            ("routes 24 h, quality read", lambda: fresh.routes(end - DAY, end)),
            ("routes 24 h, quality kept", lambda: dash.routes(end - DAY, end)),
            ("routes 30 d (unaligned)", lambda: dash.routes(end - 30 * DAY + 1234, end)),
            ("search newest 50", lambda: dash.search(limit=50)),
            ("search page 2", lambda: dash.search(limit=50, before=page1.next_before)),
            ("search route + status=failed", lambda: dash.search(route=newest.route,
                                                                  status="failed")),
            ("search model, 24 h", lambda: dash.search(model=newest.final_model,
                                                       since=end - DAY)),
            ("search request id", lambda: dash.search(request_id=newest.request_id)),
            ("request (one in full)", lambda: dash.request(newest.request_id)),
            ("policies", dash.policies),
            ("policy_text", lambda: dash.policy_text(versions[0].hash)),
            ("audit_latest", dash.audit_latest),
            ("drift_latest", dash.drift_latest),
        ]  # fmt: skip
        for name, fn in cases:
            median, worst = await _time(fn, repeat)
            print(f"  {name:32} median {median:8.1f} ms   slowest {worst:8.1f} ms")
    finally:
        await store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sqlite", help="a SQLite path (generated when missing)")
    parser.add_argument("--pg", help="a PostgreSQL URL (generated when empty)")
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--policy", default="/tmp/dashboard-bench-policy.yaml")
    args = parser.parse_args()
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    for target in filter(None, (args.sqlite, args.pg)):
        kind = "sqlite" if target == args.sqlite else "postgres"
        made = await _prepare(target, args.records, Path(args.policy))
        if made:
            print(f"{kind}: generated in {made['generate_s']:.0f} s; rollups added up from "
                  f"every row in {made['rollup_backfill_s']:.1f} s")  # fmt: skip
        print(f"{kind}:")
        await _bench(target, Path(args.policy), args.repeat)
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    asyncio.run(main())
