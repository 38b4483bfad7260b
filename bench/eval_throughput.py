"""Evaluation throughput: requests per second that ``modelroute eval`` sends through the real
engine to the simulator, and outcome rows per second that an import stores.

The simulator runs in its own process (answers at once, no latency), so the figure is what the
evaluation side costs: planning, the engine, grading, confidence signals and writing outcomes
to SQLite. The import measures reading the neutral format and the store's bulk add.

    python bench/eval_throughput.py [--prompts 2000] [--concurrency 1,8,32]
        [--import-dataset /work/shared/data/mmlu_pro] [--store URL]

Every figure is one run on whatever else the machine is doing: compare figures from one run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import yaml

from modelroute import load_policy_text
from modelroute.evaluation import Dataset, EvalItem, Evaluation, OutcomeImport, evaluation_policy
from modelroute.grading import Graders
from modelroute.outcomes import prompt_hash
from modelroute.records.stores import open_store
from modelroute.router import Router

POLICY = """
models:
  small:
    provider: simulator
    base_url: "{sim}"
    model_id: small-sim
    allow_floating: true
    prices: {input: 0.15, output: 0.6}
    context_window: 100000
    capabilities: [logprobs]
    latency: {p50_ms: 10, p95_ms: 20}
  large:
    provider: simulator
    base_url: "{sim}"
    model_id: large-sim
    allow_floating: true
    prices: {input: 2.5, output: 10}
    context_window: 100000
    latency: {p50_ms: 10, p95_ms: 20}
routes:
  qa:
    strategy:
      kind: cascade
      tiers: [[small], [large]]
      confidence: {signal: logprobs, threshold: 0.5}
"""

SIMULATOR = {
    "models": {
        "small-sim": {"tokens_per_second": 1e9, "default_answer": "The answer is (C)."},
        "large-sim": {"tokens_per_second": 1e9, "default_answer": "The answer is (C)."},
    }
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def simulator(directory: Path) -> Iterator[str]:
    config = directory / "sim.yaml"
    config.write_text(yaml.safe_dump(SIMULATOR))
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "modelroute", "simulator", "--config", str(config),
         "--port", str(port), "--until-stdin-closes"],
        stdin=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert process.stderr is not None
    process.stderr.readline()  # "simulator: listening on ..."
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(timeout=10)


def dataset(prompts: int) -> Dataset:
    items = []
    for i in range(prompts):
        text = f"Question {i}: which option is right?\nA. one\nB. two\nC. three\nD. four"
        messages = [{"role": "user", "content": text}]
        items.append(EvalItem(messages, "C", "choice", prompt_hash(messages), f"q{i}", "bench"))
    return Dataset("bench", items)


async def eval_rate(sim_url: str, store_url: str, prompts: int, concurrency: int) -> float:
    policy = load_policy_text(POLICY.replace("{sim}", sim_url))
    route = policy.routes["qa"]
    router = Router(evaluation_policy(policy, route), api_keys={})
    store = open_store(store_url)
    await store.open()
    try:
        graders = Graders()
        run = f"bench-{concurrency}-{time.time_ns()}"
        evaluation = Evaluation(
            router, route, ["small", "large"], dataset(prompts), graders, store, run,
            concurrency=concurrency,
        )  # fmt: skip
        pending = await evaluation.pending()
        started = time.perf_counter()
        summary = await evaluation.run(pending)
        elapsed = time.perf_counter() - started
        assert summary.scored == len(pending), summary
        return len(pending) / elapsed
    finally:
        await store.close()
        await router.aclose()


async def import_rate(directory: Path, store_url: str) -> tuple[int, float]:
    store = open_store(store_url)
    await store.open()
    try:
        started = time.perf_counter()
        source = OutcomeImport(directory, f"bench-import-{time.time_ns()}")
        for batch in source.batches():
            await store.add_outcomes(batch)
        return source.rows, time.perf_counter() - started
    finally:
        await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prompts", type=int, default=2000)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--import-dataset", type=Path)
    parser.add_argument("--store", help="a store URL (default: a fresh SQLite file)")
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory() as tmp:
        store_url = args.store or str(Path(tmp) / "bench.db")
        with simulator(Path(tmp)) as sim_url:
            for concurrency in (int(c) for c in args.concurrency.split(",")):
                rate = asyncio.run(eval_rate(sim_url, store_url, args.prompts, concurrency))
                pairs = 2 * args.prompts
                print(
                    f"eval  concurrency {concurrency:>3}: {rate:8.0f} requests/s ({pairs} requests)"
                )
        if args.import_dataset is not None:
            rows, seconds = asyncio.run(import_rate(args.import_dataset, store_url))
            print(
                f"import {args.import_dataset.name}: {rows} rows in {seconds:.1f} s = "
                f"{rows / seconds:,.0f} rows/s"
            )


if __name__ == "__main__":
    main()
