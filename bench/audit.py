"""The audit at scale: ``modelroute audit`` over a synthetic store of N records (default 10
million, with outcomes) in SQLite and in PostgreSQL; wall time and peak memory.

    python bench/audit.py --records 10000000 --sqlite /tmp/synth.db \
        --pg postgresql://postgres@127.0.0.1:5432/synth_10m

A store that does not exist (or is empty) is filled first by ``synth_store.py``; one that
holds records is audited as it is (so one 10M store serves several runs). Each audit runs as
its own process, as a user runs it (``modelroute audit --store URL --policy P --json``):
its wall time, and its peak resident memory from the kernel (``wait4``'s ``ru_maxrss``). For
PostgreSQL, the server processes serving the audit's database are sampled every 0.1 s while
it runs (``pg_stat_activity`` for their process ids, ``/proc/PID/status`` for ``VmHWM``, the
peak resident set): the largest single process and the sum of the peaks. A backend's resident
set counts the shared buffers it touched, so the sum over-counts shared memory; the largest
one does not. Goal: each audit within 60 s and 4 GB on this 2-core machine.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import synth_store

GOAL_S, GOAL_GB = 60.0, 4.0


def _count(url: str) -> int:
    try:
        return asyncio.run(synth_store._migrated(url))
    except Exception:
        return 0


def ensure(url: str, records: int, policy: Path) -> None:
    """Fill ``url`` with ``records`` synthetic records unless it holds records already."""
    if synth_store._is_postgres(url):
        asyncio.run(synth_store._ensure_database(url))
    held = _count(url)
    if held:
        print(f"{url}: {held:,} records already; audited as they are", flush=True)
        if not policy.exists():
            policy.write_text(synth_store.yaml.safe_dump(synth_store.POLICY, sort_keys=False))
        return
    print(f"{url}: generating {records:,} records", flush=True)
    result = synth_store.generate(url, records, policy_out=str(policy), quiet=True)
    print(f"  generated in {result['total_s']} s ({result['outcomes']:,} outcomes)", flush=True)


class ServerMemory:
    """Peak resident memory of the PostgreSQL processes serving one database, sampled."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.peaks: dict[int, int] = {}  # pid -> VmHWM in kB
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ServerMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _pids(self) -> list[int]:
        sql = f"SELECT pid FROM pg_stat_activity WHERE datname = '{self.database}'"
        out = subprocess.run(
            ["psql", "-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-Atc", sql],
            capture_output=True, text=True, timeout=10,
        )  # fmt: skip
        return [int(p) for p in out.stdout.split()]

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            for pid in self._pids():
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                except OSError:
                    continue
                for line in status.splitlines():
                    if line.startswith("VmHWM:"):
                        kb = int(line.split()[1])
                        self.peaks[pid] = max(self.peaks.get(pid, 0), kb)


def run_audit(url: str, policy: Path, top: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "modelroute", "audit", "--store", url, "--policy",
               str(policy), "--since", "3650d", "--top", str(top), "--json"]  # fmt: skip
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    output: dict[str, bytes] = {}

    def drain(name: str, pipe: Any) -> None:
        output[name] = pipe.read()

    readers = [threading.Thread(target=drain, args=(n, p)) for n, p in
               (("out", child.stdout), ("err", child.stderr))]  # fmt: skip
    for reader in readers:
        reader.start()
    # wait4 reaps the child itself, so its own peak resident set is read, no other child's
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    for reader in readers:
        reader.join()
    if child.returncode != 0:
        raise SystemExit(f"audit failed: {output['err'].decode()}")
    return {"command": " ".join(command), "wall_s": wall, "rss_mb": usage.ru_maxrss / 1024,
            "report": output["out"]}  # fmt: skip


def _server_text(peaks: list[int]) -> str:
    largest, total = max(peaks, default=0) / 1024, sum(peaks) / 1024
    return (
        f"; server: largest process {largest:,.0f} MB, sum of peaks {total:,.0f} MB over "
        f"{len(peaks)} processes"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--sqlite", help="a SQLite path (generated if missing)")
    parser.add_argument("--pg", help="a PostgreSQL URL (its database generated if empty)")
    parser.add_argument("--policy", default="/tmp/synth-policy.yaml")
    parser.add_argument("--top", type=int, default=20)
    parser.add_argument("--runs", type=int, default=2, help="audits per store (the first warms)")
    args = parser.parse_args()
    policy = Path(args.policy)
    print(f"command: {' '.join([Path(sys.executable).name, *sys.argv])}")
    print(f"python {platform.python_version()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    ok = True
    for url in filter(None, (args.sqlite, args.pg)):
        ensure(url, args.records, policy)
        for run in range(1, args.runs + 1):
            database = url.rsplit("/", 1)[-1] if synth_store._is_postgres(url) else None
            if database:
                with ServerMemory(database) as server:
                    result = run_audit(url, policy, args.top)
                extra = _server_text(list(server.peaks.values()))
            else:
                result, extra = run_audit(url, policy, args.top), ""
            met = result["wall_s"] <= GOAL_S and result["rss_mb"] <= GOAL_GB * 1024
            ok &= met
            print(f"{url} run {run}: {result['wall_s']:.1f} s, audit process peak RSS "
                  f"{result['rss_mb']:,.0f} MB{extra}; goal {'met' if met else 'NOT met'}",
                  flush=True)  # fmt: skip
        print(f"  {result['command']}")
        headline = synth_store.orjson.loads(result["report"])["headline"]
        print(f"  headline: {headline}")
    print(f"load average at the end: {os.getloadavg()}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
