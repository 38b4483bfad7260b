"""The gateway with ``--state memory`` versus ``--state redis://``, in the same run.

One simulator upstream; for each backend, one ``modelroute serve`` process (records kept in
memory, so only the state differs), then load from this process with an aiohttp client at a
fixed concurrency. Reported per backend and route: requests per second and the gateway
process's CPU time per request (user + system, from /proc), which says more than throughput
on a shared, loaded machine. Routes: ``plain`` (circuit breakers only: with Redis, a batched
write every 50 ms and a poll every 250 ms) and ``limited`` (a rate limit and a budget: one
Redis script per request on the request path, reserving and rate-checking together, and one
settle after it).

    python bench/state_backend.py [--requests 3000] [--concurrency 16] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_procs import SIM_MODEL, cpu_s, serving, upstream

POLICY = (
    "version: state-bench\n"
    + SIM_MODEL
    + """routes:
  plain:
    strategy: {{kind: fixed, models: [sim]}}
  limited:
    rate_limit: {{requests_per_minute: 100000000, tokens_per_minute: 1000000000}}
    budget: {{usd: 1000000}}
    strategy: {{kind: fixed, models: [sim]}}
"""
)

PREFIX = "mr-bench:"


async def drive(base: str, route: str, requests: int, concurrency: int) -> tuple[float, int]:
    body = {"model": route, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 5}
    left = requests
    failed = 0

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal left, failed
        while left > 0:
            left -= 1
            async with session.post(f"{base}/v1/chat/completions", json=body) as r:
                await r.read()
                failed += r.status != 200

    async with aiohttp.ClientSession() as session:
        start = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - start, failed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--redis", default=f"redis://127.0.0.1:6379/0?prefix={PREFIX}")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="state-bench-"))
    rows: list[tuple[int, str, str, float, float, int]] = []
    with upstream(tmp, POLICY, "ok", PREFIX):  # the bench's budget and rate counters go after
        for n in range(args.rounds):  # alternate, so drifts of the machine's load show up
            for state in ("memory", args.redis):
                rows += run_one(tmp, state, args, n)
    print(f"\n{args.requests} requests per cell, concurrency {args.concurrency}, records off")
    print("| round | state | route | req/s | gateway CPU ms/request | non-200 |")
    print("|---|---|---|---|---|---|")
    for n, state, route, rps, cpu_ms, failed in rows:
        label = "redis" if state.startswith("redis") else state
        print(f"| {n} | {label} | {route} | {rps:.0f} | {cpu_ms:.3f} | {failed} |")


def run_one(
    tmp: Path, state: str, args: argparse.Namespace, n: int
) -> list[tuple[int, str, str, float, float, int]]:
    out = []
    with serving(tmp, state) as (base, pid):
        asyncio.run(drive(base, "plain", 300, args.concurrency))  # warm up
        for route in ("plain", "limited"):
            before = cpu_s(pid)
            elapsed, failed = asyncio.run(drive(base, route, args.requests, args.concurrency))
            used = cpu_s(pid) - before
            out.append(
                (n, state, route, args.requests / elapsed, used / args.requests * 1000, failed)
            )
    return out


if __name__ == "__main__":
    main()
