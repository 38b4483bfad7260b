"""Outcome import and the quality refresh: the mmlu_pro dataset's 359,320 recorded outcomes
(``/work/shared/data`` format) imported into SQLite and PostgreSQL side by side, imported
again (every one already stored), then read and aggregated as the gateway's refresh does.

The outcomes are built before the clock starts; each import is one ``add_outcomes`` call (one
transaction). The refresh reads ``outcome_scores`` and aggregates per route, model and version
(the import gives every outcome a route here, so that the refresh has them all to read).

    python bench/outcomes.py [--data /work/shared/data/mmlu_pro] [--pg postgresql://...]

Goal: an import of the whole dataset in seconds (under 30 s), in either store.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import gzip
import os
import platform
import secrets
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from modelroute.outcomes import Outcome, OutcomeSource
from modelroute.outcomes.aggregate import aggregate
from modelroute.records.stores.base import Store
from modelroute.records.stores.postgres import PostgresStore
from modelroute.records.stores.sqlite import SqliteStore

GOAL_S = 30.0


def load(folder: Path) -> list[Outcome]:
    with gzip.open(folder / "outcomes.csv.gz", "rt") as f:
        return [
            Outcome(
                OutcomeSource.IMPORT,
                "choice",
                float(row["score"]),
                row["model"],
                1.7e9,
                prompt_id=row["prompt_id"],
                task=folder.name,
                route=folder.name,
                cost_usd=float(row["cost_usd"]),
                run=f"import:{folder.name}",
            )
            for row in csv.DictReader(f)
        ]


async def run(store: Store, outcomes: list[Outcome]) -> dict[str, float]:
    await store.open()
    try:
        timings: dict[str, float] = {}
        started = time.perf_counter()
        added = await store.add_outcomes(outcomes)
        timings["import"] = time.perf_counter() - started
        assert added == len(outcomes), f"stored {added} of {len(outcomes)}"
        started = time.perf_counter()
        again = await store.add_outcomes(outcomes)
        timings["again"] = time.perf_counter() - started
        assert again == 0, f"{again} stored twice"
        started = time.perf_counter()
        rows = await store.outcome_scores("route")
        timings["read"] = time.perf_counter() - started
        started = time.perf_counter()
        groups = aggregate(rows)
        timings["aggregate"] = time.perf_counter() - started
        assert sum(a.n for a in groups) == len(outcomes)
        return timings
    finally:
        await store.close()


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data/mmlu_pro"))
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="admin URL; a scratch database is created and dropped")  # fmt: skip
    args = parser.parse_args()
    outcomes = load(args.data)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"python {platform.python_version()} on {platform.machine()}; {len(outcomes):,} "
          f"outcomes from {args.data}")  # fmt: skip
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        results["sqlite"] = await run(SqliteStore(Path(tmp) / "bench.db"), outcomes)
    name = f"modelroute_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(args.pg)
    await admin.execute(f"CREATE DATABASE {name}")
    try:
        url = urlunsplit(urlsplit(args.pg)._replace(path=f"/{name}"))
        results["postgres"] = await run(PostgresStore(url), outcomes)
    finally:
        await admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        await admin.close()
    met = True
    for kind, t in results.items():
        ok = t["import"] < GOAL_S
        met &= ok
        print(f"{kind:9} import {t['import']:5.1f} s ({len(outcomes) / t['import']:>7,.0f}/s)"
              f"  again {t['again']:5.1f} s  refresh: read {t['read']:4.1f} s + aggregate "
              f"{t['aggregate']:4.1f} s   goal import < {GOAL_S:.0f} s: "
              f"{'met' if ok else 'NOT met'}")  # fmt: skip
    print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
