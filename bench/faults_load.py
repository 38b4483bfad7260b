"""Faults under load: the gateway (2 workers) in front of partly failing models.

Starts the simulator and ``modelroute serve --workers 2`` as their own processes, warms up,
then a separate load process sends an open-loop stream of requests at a fixed rate (half of
them streamed) and counts every client-visible error. Reports throughput, p50/p99 latency,
the gateway's fallbacks as seen by the simulator, and the gateway's resident memory after
warm-up and after the run.

Scenarios (``--scenario``, files in bench/faults/):
- ``mixed``: a flaky model (30% of every kind of failure), then a healthy one, then a slow one;
- ``degraded``: three models each failing 30% of requests independently (500, 503, and 429
  with Retry-After), one retry each: no healthy model to fall back on, so client errors
  should stay near the independent-failure prediction, 0.3^6 = 0.07%.

    .venv/bin/python bench/faults_load.py [--scenario mixed] [--rate 200] [--duration 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent / "modelroute"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children (the uvicorn workers), in MiB."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


async def _one(
    session: Any, url: str, stream: bool, results: list[tuple[bool, float, str]]
) -> None:
    body = {
        "model": "load",
        "stream": stream,
        "messages": [{"role": "user", "content": "Say something short."}],
    }
    start = time.perf_counter()
    try:
        async with session.post(url, json=body) as response:
            raw = await response.read()
            ok = response.status == 200
            why = "" if ok else f"HTTP {response.status}: {raw[:120]!r}"
            if ok and stream:
                text = raw.decode()
                ok = text.rstrip().endswith("data: [DONE]") and '"error"' not in text
                why = "" if ok else f"stream: {text[-200:]!r}"
            elif ok:
                ok = bool(json.loads(raw)["choices"][0]["message"]["content"])
                why = "" if ok else "empty content"
    except Exception as exc:
        ok, why = False, f"{type(exc).__name__}: {exc}"
    results.append((ok, (time.perf_counter() - start) * 1000, why))


async def _load(url: str, rate: float, duration: float) -> dict[str, Any]:
    import aiohttp

    results: list[tuple[bool, float, str]] = []
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        start = time.perf_counter()
        n = int(rate * duration)
        for i in range(n):  # open loop: requests leave on schedule, whatever the latency
            delay = start + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.ensure_future(_one(session, url, i % 2 == 1, results)))
        sent_for = time.perf_counter() - start
        await asyncio.gather(*tasks)
    latencies = sorted(r[1] for r in results)
    errors = [r[2] for r in results if not r[0]]
    return {
        "sent": len(results),
        "offered_rps": round(len(results) / sent_for, 1),
        "errors": len(errors),
        "error_examples": errors[:5],
        "p50_ms": round(latencies[len(latencies) // 2], 1),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)], 1),
        "max_ms": round(latencies[-1], 1),
    }


def _load_process(url: str, rate: float, duration: float, out: Any) -> None:
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    out.put(asyncio.run(_load(url, rate, duration)))


def run_load(url: str, rate: float, duration: float) -> dict[str, Any]:
    """The load comes from a separate process, so it does not share the gateway's CPU time
    accounting or event loop."""
    queue: Any = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=_load_process, args=(url, rate, duration, queue))
    proc.start()
    result: dict[str, Any] = queue.get()
    proc.join()
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=200)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scenario", choices=["mixed", "degraded"], default="mixed")
    args = parser.parse_args()
    prefix = "" if args.scenario == "mixed" else f"{args.scenario}_"
    sim_port, gw_port = free_port(), free_port()
    work = Path(tempfile.mkdtemp(prefix="modelroute-faults-"))
    policy = work / "policy.yaml"
    policy.write_text(
        (HERE / "faults" / f"{prefix}policy.yaml")
        .read_text()
        .replace("SIM_BASE", f"http://127.0.0.1:{sim_port}/v1")
    )
    sim = subprocess.Popen(
        [
            str(BIN),
            "simulator",
            "--config",
            str(HERE / "faults" / f"{prefix}simulator.yaml"),
            "--port",
            str(sim_port),
        ]
    )
    gw = subprocess.Popen(
        [
            str(BIN),
            "serve",
            str(policy),
            "--port",
            str(gw_port),
            "--workers",
            str(args.workers),
            "--store",
            str(work / "records.db"),
            "--spool-dir",
            str(work / "spool"),
        ],
        start_new_session=True,
    )
    try:
        wait_http(f"http://127.0.0.1:{sim_port}/health")
        wait_http(f"http://127.0.0.1:{gw_port}/healthz")
        url = f"http://127.0.0.1:{gw_port}/v1/chat/completions"
        warm = run_load(url, args.rate, args.warmup)
        rss_warm = rss_mb(gw.pid)
        with urllib.request.urlopen(f"http://127.0.0.1:{sim_port}/_sim/reset", data=b""):
            pass
        result = run_load(url, args.rate, args.duration)
        rss_after = rss_mb(gw.pid)
        with urllib.request.urlopen(f"http://127.0.0.1:{sim_port}/_sim/stats") as r:
            upstream = json.loads(r.read())
    finally:
        os.killpg(gw.pid, signal.SIGTERM)
        sim.terminate()
        gw.wait(20)
        sim.wait(20)
    growth = (rss_after - rss_warm) / rss_warm * 100
    print(f"warm-up: {warm['sent']} requests, {warm['errors']} errors")
    print(
        f"load: {result['sent']} requests at {result['offered_rps']} req/s offered "
        f"({args.duration:.0f} s, half streamed, {args.workers} workers)"
    )
    print(f"client-visible errors: {result['errors']}  {result['error_examples']}")
    print(
        f"latency: p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms"
    )
    print(f"upstream outcomes (simulator): {json.dumps(upstream, sort_keys=True)}")
    print(
        f"gateway RSS: {rss_warm:.1f} MiB after warm-up, {rss_after:.1f} MiB after the run "
        f"({growth:+.1f}%)"
    )


if __name__ == "__main__":
    main()
