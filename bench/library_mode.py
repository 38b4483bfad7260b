"""Library mode: CPU time per ``Router.chat`` call beside the official ``openai`` SDK's own call.

Both send the request the shared harness sends (model "bench", two short messages,
max_tokens 16) to the same upstream, the harness's nginx (its ``Upstream``, as
bench/policy_cost.py starts it, on CPU 0), from this process on CPU 1, at concurrency 16 on
uvloop, in alternating rounds (A B, B A, ...) so drift hits both alike:

- ``router``: ``Router.chat`` with the one-model bench policy (bench/gateway/policy.yaml) and
  the gateway's record pipeline (SQLite store and its writer thread, metrics, rolling stats),
  the writer drained before the clock stops (``policy_cost.request_round``);
- ``sdk``: ``AsyncOpenAI(...).chat.completions.create`` with the same body, one client (and
  connection pool) per round, no retries.

Each round warms up (20 calls per worker), then measures ``--requests`` calls with the
collector set as the gateway sets it (``gc.freeze`` and a young threshold of 20,000). The
figure is process CPU time (``time.process_time``, all threads) per call, so other load on the
machine is not billed; the report gives medians over the rounds, each round's figures, and
the router's CPU net of the SDK's (what routing and records cost beyond the SDK's own call).

    PYTHONPATH=src .venv/bin/python bench/library_mode.py [--rounds 6] [--requests 3200]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import uvloop
from openai import AsyncOpenAI

sys.path.insert(0, str(Path(__file__).resolve().parent))
from policy_cost import BODY, HARNESS, load, request_round


async def sdk_round(base_url: str, n: int, conc: int) -> float:
    """CPU microseconds per ``chat.completions.create`` call of the official SDK."""
    client = AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
    kwargs: dict[str, Any] = dict(BODY)

    async def worker(count: int) -> None:
        for _ in range(count):
            completion = await client.chat.completions.create(**kwargs)
            if not completion.choices:
                raise SystemExit(f"unexpected answer: {completion}")

    await asyncio.gather(*(worker(20) for _ in range(conc)))  # warm the pool
    gc.collect()
    gc.freeze()  # the collector as request_round sets it, so both are measured alike
    threshold = gc.get_threshold()
    gc.set_threshold(20_000, *threshold[1:])
    try:
        start = time.process_time_ns()
        await asyncio.gather(*(worker(n // conc) for _ in range(conc)))
        return (time.process_time_ns() - start) / (n // conc * conc) / 1000
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--requests", type=int, default=3_200, help="calls per round")
    parser.add_argument("--conc", type=int, default=16)
    args = parser.parse_args()
    sys.path.insert(0, str(HARNESS))
    import bench as harness  # the shared harness: its nginx upstream

    workdir = Path(tempfile.mkdtemp(prefix="library-mode-"))
    upstream = harness.Upstream(str(workdir), [0], 0, 1, "0", 0)
    upstream.start()
    os.sched_setaffinity(0, {1})  # as the gateway: CPU 1, the upstream on CPU 0
    samples: dict[str, list[float]] = {"router": [], "sdk": []}
    try:
        base = upstream.root(0) + "/v1"
        policy = load("one-model", base, workdir)
        for index in range(args.rounds):
            order = ["router", "sdk"] if index % 2 == 0 else ["sdk", "router"]
            for name in order:
                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    if name == "router":
                        took = runner.run(request_round(policy, workdir, args.requests, args.conc))
                    else:
                        took = runner.run(sdk_round(base, args.requests, args.conc))
                samples[name].append(took)
                print(f"round {index + 1} {name}: {took:.1f} us/call", flush=True)
    finally:
        upstream.stop()
    router, sdk = (statistics.median(samples[k]) for k in ("router", "sdk"))
    nets = [r - s for r, s in zip(samples["router"], samples["sdk"], strict=True)]
    print(
        f"\nCPU time per call, median of {args.rounds} alternating rounds of {args.requests} "
        f"calls at concurrency {args.conc} (process CPU, all threads)"
    )
    print(f"  Router.chat (one-model policy, SQLite records, writer drained): {router:.1f} us")
    print(f"  openai SDK AsyncOpenAI().chat.completions.create:               {sdk:.1f} us")
    print(f"  router net of the SDK: {router - sdk:+.1f} us (per round: "
          + ", ".join(f"{v:+.1f}" for v in nets) + ")")  # fmt: skip
    for name in ("router", "sdk"):
        print(f"  {name} per round: " + " ".join(f"{v:.1f}" for v in samples[name]))


if __name__ == "__main__":
    main()
