"""Where a response-cache hit's time goes: the gateway's ASGI app called in this process (no
HTTP server, no socket), the simulator in-process as the upstream, records kept in memory.

Prints, per request: the CPU time of ``GET /healthz`` (the app's own dispatch and response),
of a hit and of a streamed hit (best and median of 5 runs); each step of a hit timed alone
(``timeit``, best of 5); then cProfile's cumulative times of a hit's functions (inflated by
the profiler, so read them as shares, not as times).

    python bench/cache_profile.py [--requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import statistics
import sys
import time
import timeit
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from cache import POLICY, _body
from modelroute import load_policy_text
from modelroute.cache.entry import CachedAnswer
from modelroute.cache.key import cache_key, uncacheable
from modelroute.features import request_context
from modelroute.planner import plan
from modelroute.records.metrics import MetricsSink
from modelroute.router import Router
from modelroute.server.app import create_app
from modelroute.testing import Simulator

SIMULATOR: dict[str, Any] = {
    "seed": 1,
    "models": {
        "sim-v1": {
            "latency_ms": {"p50": 1, "p95": 2},
            "ttft_ms": {"p50": 1, "p95": 2},
            "tokens_per_second": 100000,
            "context_window": 32000,
            "default_answer": "The answer is forty-two, as it always was.",
        }
    },
}
ANSWER = {
    "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "sim-v1",
    "choices": [{"index": 0, "finish_reason": "stop", "logprobs": None,
                 "message": {"role": "assistant", "content": SIMULATOR["models"]["sim-v1"]
                             ["default_answer"]}}],
    "usage": {"prompt_tokens": 20, "completion_tokens": 12, "total_tokens": 32},
}  # fmt: skip


def _scope(cell: str) -> dict[str, Any]:
    method, path = ("GET", "/healthz") if cell == "floor" else ("POST", "/v1/chat/completions")
    return {
        "type": "http", "method": method, "path": path, "raw_path": path.encode(),
        "headers": [(b"content-type", b"application/json"), (b"host", b"bench")],
        "query_string": b"", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 2),
        "scheme": "http", "http_version": "1.1", "root_path": "",
    }  # fmt: skip


async def _one(app: Any, cell: str, i: int) -> None:
    body = orjson.dumps(_body(cell, i))
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if given:  # then the client stays connected until the answer is sent
            await asyncio.Event().wait()
        given = True
        return {"type": "http.request", "body": body, "more_body": False}

    statuses: list[int] = []

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    await app(_scope(cell), receive, send)
    assert statuses == [200], statuses


def _steps(router: Router) -> None:
    request = _body("hit", 0)
    ctx = request_context(request, {}, router._token_counts)
    stats = router.stats_snapshot()
    raw = CachedAnswer(ANSWER, "sim", 0.0001, 1.0).encode()
    steps = {
        "features (request_context)": lambda: request_context(request, {}, router._token_counts),
        "plan": lambda: plan(ctx, router.policy, stats),
        "uncacheable": lambda: uncacheable(request, False),
        "cache key (canonical JSON + BLAKE2b)": lambda: cache_key("c", "sim", "sim-v1", request),
        "entry decode + Completion": lambda: CachedAnswer.decode(raw).completion(),  # type: ignore[union-attr]
        "response body (orjson.dumps)": lambda: orjson.dumps(ANSWER),
    }
    print("\n| step of a hit | µs per call (best of 5) |\n|---|---|")
    for name, step in steps.items():
        best = min(timeit.repeat(step, number=20_000, repeat=5)) / 20_000 * 1e6
        print(f"| {name} | {best:.1f} |")


async def main(requests: int) -> None:
    async with Simulator(SIMULATOR) as sim:
        port = sim.openai_base_url.rsplit(":", 1)[1].split("/")[0]
        policy = load_policy_text(POLICY.format(sim=port), "cache-bench.yaml")
        metrics = MetricsSink()
        router = Router(policy, api_keys={n: "sk-bench" for n in policy.models}, sinks=[metrics])
        app = create_app(router, metrics)
        router.warm_up()
        await router.start()
        for i in range(300):  # both paths warm, and the one entry the hits read kept
            await _one(app, "miss", -1 - i)
            await _one(app, "hit", 0)
        spent: dict[str, list[float]] = {"floor": [], "hit": [], "hit stream": []}
        for _ in range(5):
            for cell, runs in spent.items():
                began = time.process_time()
                for i in range(requests):
                    await _one(app, cell, i)
                runs.append((time.process_time() - began) / requests * 1000)
        print(f"{requests} requests per run, 5 runs; the app in process, no HTTP server")
        print("| request | CPU ms (best) | CPU ms (median) |\n|---|---|---|")
        for cell, runs in spent.items():
            print(f"| {cell} | {min(runs):.4f} | {statistics.median(runs):.4f} |")
        _steps(router)
        profile = cProfile.Profile()
        profile.enable()
        for i in range(requests):
            await _one(app, "hit", i)
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats("modelroute", 30)
        print("\ncProfile of the hits, cumulative (profiler-inflated):\n" + out.getvalue())
        await router.aclose()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args().requests))
