"""Where the gateway's extra CPU with records on goes: the records-on/off gap split by stage,
the stages cut off one by one, side by side in one run.

Six gateways on the one-model bench policy, each alone on CPU 1 in front of the shared
harness's nginx upstream (CPU 0), the configurations alternating round by round:

- ``on``: SQLite records, as served;
- ``on, no covering indexes``: the same without the audit's and drift's covering indexes
  (dropped by the launcher once the store has migrated), what replacing them by rollups could
  save at most; ``on, primary key only``: without any secondary index either;
- ``encoded, not written``: the writer builds every row and the batch's rollup, then stores
  nothing (``SqliteStore._store`` replaced by the launcher);
- ``handed over, dropped``: each batch reaches the store's thread and is dropped there
  (``SqliteStore._write`` replaced);
- ``off``: ``--store none`` (records kept in memory only, metrics still on).

So ``off`` → ``dropped`` is the queue and the hand-off to the writer's thread; ``dropped`` →
``encoded`` is encoding the rows and adding up the rollup (Python); ``encoded`` → ``on`` is
SQLite's transaction (the inserts into the table and its indexes, the rollups' upserts, the
commit). Each point ends with a short pause so the writer drains what the point left before
the process's CPU is read; CPU per request is the whole process's (``/proc``) over the point.

    python3 bench/records_split.py [--rounds 5] [--duration 5] [--conc 16]

The replacements are made by the launcher (``python -c``), as ``bench/records_tail.py`` makes
its variants, never by the product.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from records_tail import MAIN, PATH, harness, serve, warm_up  # noqa: E402  (the shared harness)

_STORE = "from modelroute.records.stores.sqlite import SqliteStore"
COVERING = ("requests_task_traffic", "requests_drift")
NARROW = ("requests_started_at", "requests_route", "requests_final_model", "requests_status")


def _without(indexes: tuple[str, ...]) -> str:
    """The launcher's statements that make the store drop ``indexes`` once it has migrated."""
    drops = "; ".join(f"DROP INDEX IF EXISTS {name}" for name in indexes)
    return (
        f"{_STORE}; _open = SqliteStore._open; "
        f"SqliteStore._open = lambda self: (_open(self), self._conn.executescript({drops!r}))[0]"
    )


CONFIGS: dict[str, str | None] = {
    "on": "",
    "on, no covering indexes": _without(COVERING),
    "on, primary key only": _without(COVERING + NARROW),
    "encoded, not written": f"{_STORE}; SqliteStore._store = lambda self, *args: True",
    "handed over, dropped": f"{_STORE}; SqliteStore._write = lambda self, *args: None",
    "off": None,  # --store none
}
DRAIN_S = 0.3  # after a point: the writer's last batch (it flushes every 50 ms)


def start(index: int, patch: str | None, policy: Path, workdir: Path) -> tuple[Any, str]:
    code = "; ".join(["import sys", *([patch] if patch else []), *MAIN])
    store = "none" if patch is None else str(workdir / f"gw{index}.db")
    return serve(f"gw{index}", code, store, policy, workdir)


def point(
    proc: Any, url: str, body: Path, args: argparse.Namespace, tag: str
) -> tuple[float, float]:
    """Requests per second and CPU microseconds per request of one point."""
    harness.wait_idle(proc.pid)
    cpu0 = harness.group_cpu_and_rss(proc.pid)[0]
    out = harness.run_wrk(
        url, PATH, {}, str(body), args.conc, args.duration, 1, "0", 10, str(body.parent), tag
    )
    time.sleep(DRAIN_S)
    cpu = harness.group_cpu_and_rss(proc.pid)[0] - cpu0
    n = out["requests"]
    if sum(out["errors"].values()) or not n:
        sys.exit(f"{tag}: {out['errors']}, {n} requests")
    return n / (out["duration_us"] / 1e6), 1e6 * cpu / n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--conc", type=int, default=16)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="records-split-"))
    upstream = harness.Upstream(str(workdir), [0], 0, 1, "0", 0)
    upstream.start()
    running: dict[str, tuple[Any, str]] = {}
    results: dict[str, list[tuple[float, float]]] = {name: [] for name in CONFIGS}
    try:
        text = (HERE / "gateway" / "policy.yaml").read_text()
        policy = workdir / "policy.yaml"
        policy.write_text(text.replace("UPSTREAM_BASE", upstream.root(0) + "/v1"))
        for i, (name, patch) in enumerate(CONFIGS.items()):
            running[name] = start(i, patch, policy, workdir)
        body = warm_up([url for _, url in running.values()], workdir, args.conc)
        for r in range(args.rounds):
            order = list(running.items())
            for i, (name, (proc, url)) in enumerate(order if r % 2 == 0 else order[::-1]):
                results[name].append(point(proc, url, body, args, f"r{r}-{i}"))
    finally:
        for proc, _ in running.values():
            harness.stop_group(proc)
        upstream.stop()
    report(results, args)


def report(results: dict[str, list[tuple[float, float]]], args: argparse.Namespace) -> None:
    print(
        f"one-model policy, JSON, concurrency {args.conc}, {args.rounds} alternating rounds of "
        f"{args.duration} s, one core for each gateway; medians over the rounds"
    )
    cpu = {name: statistics.median(c for _, c in points) for name, points in results.items()}
    off = cpu["off"]
    for name, points in results.items():
        rps = statistics.median(r for r, _ in points)
        print(
            f"  {name:22} RPS {rps:6.0f}  CPU us/request {cpu[name]:6.1f}  over off "
            f"{cpu[name] - off:+6.1f} ({(cpu[name] - off) / off:+6.1%})  per round "
            f"{[round(c) for _, c in points]}"
        )
    stages = (
        ("queue and hand-off to the writer's thread", "handed over, dropped", "off"),
        ("encoding rows and the rollup (Python)", "encoded, not written", "handed over, dropped"),
        ("SQLite: inserts, rollup upserts, commit", "on", "encoded, not written"),
    )
    print("  the gap by stage (us CPU per request, share of off's CPU per request):")
    for label, upper, lower in stages:
        gap = cpu[upper] - cpu[lower]
        print(f"    {label:44} {gap:+6.1f}  {gap / off:+6.1%}")


if __name__ == "__main__":
    main()
