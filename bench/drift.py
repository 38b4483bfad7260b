"""Drift detection at scale: ``modelroute drift`` over N synthetic records (default 10
million, ``bench/synth_store.py``) in SQLite and in PostgreSQL, wall time and peak memory.

    python bench/drift.py --records 10000000 --sqlite /tmp/drift-10m.db \\
        --postgres postgresql://postgres@127.0.0.1:5432/drift_10m

A store that already holds the records is reused (generating 10M takes a while); an empty or
missing one is generated first. The two windows cover the whole synthetic span (the current
window its second half, the baseline the first), so every record is aggregated. Each run is
``modelroute drift`` in its own process, its wall time and peak resident memory measured by
``/usr/bin/time``; the in-process breakdown (the aggregate query alone, the
whole check) is measured separately. Results: a JSON line per run on stdout, and a Markdown
table on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import yaml
from synth_scenarios import POLICY
from synth_store import generate

from modelroute.analysis.drift import Windows, check, queries
from modelroute.policy import load_policy
from modelroute.records.stores import open_store

HOUR = 3600.0


async def _span(url: str) -> tuple[int, float, float]:
    store = open_store(url)
    await store.open()
    try:
        rows = await store.read_sql(
            "SELECT COUNT(*), MIN(started_at), MAX(started_at) FROM requests"
        )
        n, first, last = rows[0]
        return int(n), float(first or 0.0), float(last or 0.0)
    finally:
        await store.close()


async def _vacuum(url: str) -> float:
    """PostgreSQL: mark the table's pages all-visible, so the index-only scans need not visit
    the table (autovacuum does the same in time on a live store)."""
    import asyncpg

    started = time.perf_counter()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("VACUUM (ANALYZE) requests")
        await conn.execute("VACUUM (ANALYZE) outcomes")
    finally:
        await conn.close()
    return time.perf_counter() - started


def prepare(url: str, records: int, policy_out: Path) -> dict[str, Any]:
    """The store with ``records`` records (generated when empty)."""
    is_pg = url.startswith("postgres")
    found = 0
    if is_pg or Path(url).exists():
        try:
            found = asyncio.run(_span(url))[0]
        except Exception:  # a database not created yet
            found = 0
    timings: dict[str, Any] = {"generated": False}
    if found == 0:
        timings = {"generated": True, **generate(url, records, 30.0, 1, None, str(policy_out))}
    elif found != records:
        raise SystemExit(f"{url} holds {found} records, not {records}: use an empty store")
    if is_pg:
        timings["vacuum_s"] = round(asyncio.run(_vacuum(url)), 1)
    return timings


def run_cli(url: str, policy: Path, since: float, baseline_s: float) -> dict[str, Any]:
    """``modelroute drift`` in its own process: wall time, peak memory, exit code, counts.

    The peak is measured by ``/usr/bin/time`` around the command: a child forked from this
    process (which may have just generated millions of records) would report this process's
    peak as its own, as Linux carries the high-water mark of the forked copy across exec."""
    args = [
        "/usr/bin/time", "-f", "%M %e", "-o", "", sys.executable, "-m", "modelroute", "drift",
        "--store", url, "--policy", str(policy), "--since", repr(since),
        "--baseline", f"{baseline_s:.0f}s", "--json",
    ]  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        args[4] = str(Path(tmp) / "time")
        done = subprocess.run(args, capture_output=True)
        if done.returncode not in (0, 1):
            raise SystemExit(
                f"modelroute drift failed ({done.returncode}): {done.stderr[-2000:]!r}"
            )
        peak_kb, wall = Path(args[4]).read_text().split()[-2:]
    report = json.loads(done.stdout)
    return {
        "wall_s": float(wall),
        "peak_rss_mb": round(int(peak_kb) / 1024),
        "exit": done.returncode,
        "counts": report["counts"],
        "alerts": [f["condition"] for f in report["findings"] if f["status"] == "alert"],
    }


async def breakdown(url: str, policy: Path, windows: Windows) -> dict[str, float]:
    """The aggregate query alone, then the whole check, in this process."""
    store = open_store(url)
    await store.open()
    try:
        started = time.perf_counter()
        rows = await queries.groups(store, windows)
        grouped = time.perf_counter() - started
        started = time.perf_counter()
        await check(store, windows, policy=load_policy(policy))
        whole = time.perf_counter() - started
    finally:
        await store.close()
    return {"groups": len(rows), "groups_s": round(grouped, 1), "check_s": round(whole, 1)}


def bench(url: str, label: str, records: int, runs: int, policy: Path) -> list[dict[str, Any]]:
    prepared = prepare(url, records, policy)
    n, first, last = asyncio.run(_span(url))
    middle = first + (last - first) / 2
    baseline_s = middle - first + HOUR  # the baseline reaches back past the first record
    results = []
    for i in range(runs):
        result = {
            "store": label,
            "records": n,
            "run": i + 1,
            **run_cli(url, policy, middle, baseline_s),
        }
        if i == 0:
            result["prepared"] = prepared
        print(json.dumps(result), flush=True)
        results.append(result)
    windows = Windows.ending(time.time(), time.time() - middle, baseline_s)
    parts = {"store": label, "breakdown": asyncio.run(breakdown(url, policy, windows))}
    print(json.dumps(parts), flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--sqlite", help="a SQLite path (generated when missing)")
    parser.add_argument("--postgres", help="a postgresql:// URL (generated when empty)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--policy-out", default="/tmp/drift-bench-policy.yaml")
    args = parser.parse_args()
    policy = Path(args.policy_out)
    policy.write_text(yaml.safe_dump(POLICY, sort_keys=False))  # what the records were planned by
    print(f"# {platform.node()} {platform.python_version()} {os.cpu_count()} cpus", file=sys.stderr)
    rows = []
    for label, url in (("sqlite", args.sqlite), ("postgres", args.postgres)):
        if url:
            rows += bench(url, label, args.records, args.runs, policy)
    print("| store | records | run | wall s | peak RSS MB | alerts |", file=sys.stderr)
    print("|---|---|---|---|---|---|", file=sys.stderr)
    for r in rows:
        print(
            f"| {r['store']} | {r['records']:,} | {r['run']} | {r['wall_s']} | "
            f"{r['peak_rss_mb']} | {len(r['alerts'])} |",
            file=sys.stderr,
        )


if __name__ == "__main__":
    main()
