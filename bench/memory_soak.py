"""Memory over time: the gateway's resident memory during a long run at a fixed request rate.

Starts ``modelroute serve`` as bench/overhead_policies.py runs it (the one-model policy
bench/gateway/policy.yaml, SQLite records, metrics, rolling stats, one worker, alone on CPU 1;
``MODELROUTE_BIN`` names the command, see modelroute_bin.py) in front of the shared harness's
nginx upstream (CPU 0), then sends ``--rate`` requests per second for ``--minutes`` from this
process (CPU 0): an open-loop client on uvloop and aiohttp, request i sent at start + i/rate
whatever the answers do, a quarter of them streams (``--stream-every 4``). Every
``--every`` seconds it reads VmRSS (with its anonymous and file-backed parts) of each process
in the gateway's group, and reports whether the resident memory is flat over the last
``--window`` minutes: every sample there within ±5% of the window's first sample. The samples
also go to bench/results/memory-soak-<time>.json.

    PYTHONPATH=src .venv/bin/python bench/memory_soak.py [--minutes 20] [--rate 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import uvloop

HERE = Path(__file__).resolve().parent
HARNESS = Path(os.environ.get("HARNESS", HERE.parent.parent / "shared" / "bench" / "gateway"))
sys.path.insert(0, str(HERE))
from modelroute_bin import modelroute_bin  # noqa: E402
from startup_memory import rss_mib  # noqa: E402

sys.path.insert(0, str(HARNESS))
import bench as harness  # noqa: E402  (the shared harness: upstream, process groups)


class Load:
    """Requests sent, answered with a 200 and a complete body, failed; how late the pacer ran."""

    def __init__(self) -> None:
        self.sent = self.ok = self.failed = 0
        self.worst_lag_s = 0.0


async def one(session: aiohttp.ClientSession, url: str, body: bytes, load: Load) -> None:
    try:
        async with session.post(url, data=body, headers={"content-type": "application/json"}) as r:
            text = await r.read()
            good = r.status == 200 and (
                b"[DONE]" in text if b'"stream"' in body else b"choices" in text
            )
    except (TimeoutError, aiohttp.ClientError):
        good = False
    load.ok += good
    load.failed += not good


async def pace(url: str, bodies: list[bytes], rate: float, seconds: float, load: Load) -> None:
    """Open loop: request i starts at start + i / rate (late ones go at once, counted as lag)."""
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks: set[asyncio.Task[None]] = set()
        loop = asyncio.get_running_loop()
        start = loop.time()
        total = int(rate * seconds)
        for i in range(total):
            due = start + i / rate
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                load.worst_lag_s = max(load.worst_lag_s, -delay)
            task = asyncio.create_task(one(session, url, bodies[i % len(bodies)], load))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            load.sent += 1
        await asyncio.gather(*tasks)


def group_rss(pgid: int) -> dict[str, float]:
    """VmRSS, RssAnon and RssFile summed over the gateway's process group (MiB)."""
    total = {"VmRSS": 0.0, "RssAnon": 0.0, "RssFile": 0.0}
    for pid in harness.group_pids(pgid):
        try:
            for name, value in rss_mib(pid).items():
                total[name] += value
        except FileNotFoundError:  # a process that just ended
            continue
    return total


async def sample(pgid: int, every: float, seconds: float, load: Load, rows: list[Any]) -> None:
    start = time.monotonic()
    while True:
        elapsed = time.monotonic() - start
        mem = group_rss(pgid)
        rows.append({"t_s": round(elapsed, 1), **mem, "sent": load.sent, "ok": load.ok,
                     "failed": load.failed, "load1": os.getloadavg()[0]})  # fmt: skip
        print(
            f"{elapsed:7.0f} s  RSS {mem['VmRSS']:6.1f} MiB (anon {mem['RssAnon']:.1f}, file "
            f"{mem['RssFile']:.1f})  sent {load.sent}  ok {load.ok}  failed {load.failed}  "
            f"load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        if elapsed >= seconds:
            return
        await asyncio.sleep(min(every, seconds - elapsed))


async def run(url: str, pgid: int, args: argparse.Namespace, rows: list[Any]) -> Load:
    load = Load()
    n = args.stream_every
    bodies = [harness.request_body("bench", i == n - 1, True) for i in range(n)]
    seconds = args.minutes * 60
    await asyncio.gather(
        pace(url, bodies, args.rate, seconds, load),
        sample(pgid, args.every, seconds, load, rows),
    )
    return load


def verdict(rows: list[Any], window_s: float, tolerance: float) -> list[str]:
    last = rows[-1]
    inside = [r for r in rows if r["t_s"] >= last["t_s"] - window_s - 1]
    base = inside[0]["VmRSS"]
    low = min(r["VmRSS"] for r in inside)
    high = max(r["VmRSS"] for r in inside)
    flat = all(abs(r["VmRSS"] - base) <= tolerance * base for r in inside)
    return [
        f"RSS at start {rows[0]['VmRSS']:.1f} MiB, at the end {last['VmRSS']:.1f} MiB "
        f"(anon {last['RssAnon']:.1f}, file {last['RssFile']:.1f}), peak "
        f"{max(r['VmRSS'] for r in rows):.1f} MiB",
        f"last {window_s / 60:.0f} minutes ({len(inside)} samples from t={inside[0]['t_s']:.0f} "
        f"s): first {base:.1f}, min {low:.1f} ({(low - base) / base:+.1%}), max {high:.1f} "
        f"({(high - base) / base:+.1%}): {'flat' if flat else 'NOT flat'} within "
        f"±{tolerance:.0%}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=300.0, help="requests per second")
    parser.add_argument("--every", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--window", type=float, default=15.0, help="minutes judged for flatness")
    parser.add_argument("--stream-every", type=int, default=4, help="every Nth request streams")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="memory-soak-"))
    upstream = harness.Upstream(str(workdir), [0], 0, 1, "0", 0)
    upstream.start()
    os.sched_setaffinity(0, {0})  # the client beside the upstream; the gateway has CPU 1
    policy = (HERE / "gateway" / "policy.yaml").read_text()
    (workdir / "policy.yaml").write_text(policy.replace("UPSTREAM_BASE", upstream.root(0) + "/v1"))
    port = harness.free_port()
    cmd = (
        f"exec {modelroute_bin()} serve {workdir}/policy.yaml --host 127.0.0.1 --port {port} "
        f"--workers 1 --store {workdir}/records.db --spool-dir {workdir}/spool"
    )
    gateway = harness.start_group(cmd, "1", {}, str(workdir / "gateway.log"))
    rows: list[Any] = []
    started = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    try:
        while not harness.port_open("127.0.0.1", port):
            if gateway.poll() is not None:
                sys.exit((workdir / "gateway.log").read_text()[-2000:])
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port}/v1/chat/completions"
        print(f"{started} UTC: {cmd}\n{args.rate:.0f} requests/s for {args.minutes:g} minutes")
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            load = runner.run(run(url, gateway.pid, args, rows))
    finally:
        harness.stop_group(gateway)
        upstream.stop()
    lines = verdict(rows, args.window * 60, 0.05)
    lines.append(
        f"requests: {load.sent} sent, {load.ok} answered in full, {load.failed} failed; "
        f"achieved {load.sent / (args.minutes * 60):.1f}/s; the pacer ran at most "
        f"{load.worst_lag_s * 1000:.1f} ms late"
    )
    print("\n".join(lines))
    out = HERE / "results" / f"memory-soak-{started}.json"
    out.write_text(json.dumps({"args": vars(args), "cmd": cmd, "samples": rows, "summary": lines}))
    print(f"wrote {out}")
    return 0 if load.failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
