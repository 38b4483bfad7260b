"""The response cache: the gateway's CPU per request on a hit versus a miss, in the same run.

One simulator upstream (its own process); for each cache backend (``--state memory``: the
in-process LRU; ``--state redis://``: Redis), one ``modelroute serve`` process with records
kept in memory, then load from this process with an aiohttp client. Reported per cell: the
gateway process's CPU time per request (user + system, from /proc; on a shared, loaded machine
this says more than throughput) and requests per second. Cells, each on the same process:

- ``uncached``: distinct prompts on a route without a cache (the gateway as it was);
- ``miss``: distinct prompts on a cached route (a lookup that misses, then the answer kept);
- ``hit``: one prompt repeated on the cached route (answered from the cache);
- ``hit stream``: the same, streamed (the cached answer replayed as chunks);
- ``floor``: ``GET /healthz``, the HTTP server's own cost of a request (uvicorn, the ASGI
  app's dispatch, the response), which no cache can remove.

Then the router alone, in this process (``Router.chat``, no HTTP server; the simulator in its
own process): CPU per request of a hit and of a miss, the part of a request the cache decides.

    python bench/cache.py [--requests 2000] [--concurrency 4] [--rounds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gateway_procs import SIM_MODEL, cpu_s, serving, upstream

ANSWER = "The answer is forty-two, as it always was."

POLICY = (
    "version: cache-bench\n"
    + SIM_MODEL
    + """routes:
  uncached:
    strategy: {{kind: fixed, models: [sim]}}
  cached:
    strategy: {{kind: fixed, models: [sim]}}
    cache: {{ttl: 1h}}
"""
)

PREFIX = "mr-cache-bench:"
CELLS = ("uncached", "miss", "hit", "hit stream", "floor")


def _body(cell: str, i: int) -> dict[str, object]:
    distinct = cell in ("uncached", "miss")
    text = f"Question number {i}: what is the answer?" if distinct else "What is the answer?"
    body: dict[str, object] = {
        "model": "uncached" if cell == "uncached" else "cached",
        "messages": [{"role": "system", "content": "Answer briefly."},
                     {"role": "user", "content": text}],
        "temperature": 0,
        "max_tokens": 20,
    }  # fmt: skip
    if cell == "hit stream":
        body["stream"] = True
    return body


async def drive(base: str, cell: str, start: int, requests: int, concurrency: int) -> tuple:
    """(seconds, non-200 answers, answers whose x-modelroute-cache header was unexpected)"""
    index = start
    end = start + requests
    failed = wrong = 0
    expect = {"uncached": None, "miss": "miss", "hit": "hit", "hit stream": "hit"}.get(cell)

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal index, failed, wrong
        while index < end:
            i, index = index, index + 1
            if cell == "floor":
                sent = session.get(f"{base}/healthz")
            else:
                sent = session.post(f"{base}/v1/chat/completions", json=_body(cell, i))
            async with sent as r:
                await r.read()
                failed += r.status != 200
                wrong += r.headers.get("x-modelroute-cache") != expect

    async with aiohttp.ClientSession() as session:
        began = time.perf_counter()
        await asyncio.gather(*(worker(session) for _ in range(concurrency)))
        return time.perf_counter() - began, failed, wrong


def run_backend(tmp: Path, state: str, args: argparse.Namespace, round_: int) -> list[tuple]:
    rows = []
    offset = 10_000_000 * (round_ + 1)  # fresh prompts each round: Redis keeps entries
    with serving(tmp, state) as (base, pid):
        asyncio.run(drive(base, "uncached", 0, 300, args.concurrency))  # warm up
        asyncio.run(drive(base, "hit", 0, 1, 1))  # the one entry the hits read
        for cell in CELLS:
            before = cpu_s(pid)
            took, failed, wrong = asyncio.run(
                drive(base, cell, offset, args.requests, args.concurrency)
            )
            used = cpu_s(pid) - before
            cpu_ms = used / args.requests * 1000
            rows.append((round_, state, cell, args.requests / took, cpu_ms, failed, wrong))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--redis", default=f"redis://127.0.0.1:6379/0?prefix={PREFIX}")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cache-bench-"))
    rows: list[tuple] = []
    router_rows: list[tuple[int, float, float]] = []
    with upstream(tmp, POLICY, ANSWER, PREFIX) as sim_port:
        for n in range(args.rounds):  # alternate, so drifts of the machine's load show up
            for state in ("memory", args.redis):
                rows += run_backend(tmp, state, args, n)
            router_rows.append((n, *asyncio.run(router_alone(sim_port, args.requests))))
    _report(rows, args)
    print("\nThe router alone (Router.chat in this process, memory cache), CPU ms/request:")
    print("| round | miss | hit | hit / miss |")
    print("|---|---|---|---|")
    for n, miss, hit in router_rows:
        print(f"| {n} | {miss:.3f} | {hit:.3f} | {hit / miss:.2f} |")


async def router_alone(sim_port: int, requests: int) -> tuple[float, float]:
    """CPU per ``Router.chat`` of a miss and of a hit (this process: router and client)."""
    from modelroute import load_policy_text
    from modelroute.records.metrics import MetricsSink
    from modelroute.router import Router

    policy = load_policy_text(POLICY.format(sim=sim_port), "cache-bench.yaml")
    keys = {name: "sk-bench" for name in policy.models}
    async with Router(policy, api_keys=keys, sinks=[MetricsSink()]) as router:
        router.warm_up()
        for i in range(200):  # warm up both paths
            await router.chat(_body("miss", -1 - i))
            await router.chat(_body("hit", 0))
        spent = []
        for cell in ("miss", "hit"):
            began = time.process_time()
            for i in range(requests):
                await router.chat(_body(cell, 20_000_000 + i))
            spent.append((time.process_time() - began) / requests * 1000)
    return spent[0], spent[1]


def _report(rows: list[tuple], args: argparse.Namespace) -> None:
    print(f"\n{args.requests} requests per cell, concurrency {args.concurrency}, records off")
    print("| round | cache | cell | req/s | gateway CPU ms/request | non-200 | unexpected |")
    print("|---|---|---|---|---|---|---|")
    for n, state, cell, rps, cpu_ms, failed, wrong in rows:
        label = "redis" if state.startswith("redis") else state
        print(f"| {n} | {label} | {cell} | {rps:.0f} | {cpu_ms:.3f} | {failed} | {wrong} |")
    print("\n| cache | round | hit / miss | hit stream / miss | hit / uncached |")
    print("|---|---|---|---|---|")
    ratios: dict[str, list[float]] = {}
    for n in range(args.rounds):
        for state in {r[1] for r in rows}:
            cpu = {r[2]: r[4] for r in rows if r[0] == n and r[1] == state}
            label = "redis" if state.startswith("redis") else state
            ratios.setdefault(label, []).append(cpu["hit"] / cpu["miss"])
            print(
                f"| {label} | {n} | {cpu['hit'] / cpu['miss']:.2f} | "
                f"{cpu['hit stream'] / cpu['miss']:.2f} | {cpu['hit'] / cpu['uncached']:.2f} |"
            )
    for label, found in sorted(ratios.items()):
        print(
            f"{label}: hit/miss CPU median {statistics.median(found):.2f} over {len(found)} rounds"
        )


if __name__ == "__main__":
    main()
