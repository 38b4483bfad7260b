"""Learned routing's cost per request: ``decide`` (score the prompt, then plan) timed call by
call on held-out prompts, beside ``plan`` alone on the same requests, per scorer kind.
Each call is timed twice over: wall time (perf_counter_ns), which on a shared, loaded VM
includes the scheduler's preemptions, and the thread's CPU time (thread_time_ns), which is
the work the call itself does.

For each kind a router is trained on the outcome directory's train split (as ``modelroute
train --kind KIND`` does), loaded through a policy whose learned route names it, and every
test-split prompt is routed once (after a warm-up), each call timed with perf_counter_ns.
The goal is p99 <= 2 ms per request.

    python bench/learned_inference.py --outcomes ../shared/data/mmlu_pro [--kinds knn,mf]
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from modelroute.learned import decide
from modelroute.learned.data import load_outcomes
from modelroute.learned.train import train, write
from modelroute.planner import RequestContext, plan
from modelroute.policy.load import load_policy


def policy_text(outcomes: Path, router: Path) -> str:
    models: dict[str, Any] = {}
    with (outcomes / "models.csv").open(newline="") as handle:
        for row in csv.DictReader(handle):
            models[row["model"]] = {
                "provider": "openai",
                "base_url": "http://127.0.0.1:9/v1",
                "model_id": row["model"],
                "allow_floating": True,
                "prices": {
                    "input": float(row["in_usd_per_mtok"]),
                    "output": float(row["out_usd_per_mtok"]),
                },
                "context_window": 1_000_000,
                "latency": {"p50_ms": 500, "p95_ms": 1500},
            }
    strategy = {"kind": "learned", "models": list(models), "router": str(router)}
    return yaml.safe_dump({"models": models, "routes": {"learned": {"strategy": strategy}}})


def _percentiles(ns: list[int]) -> str:
    us = np.array(ns) / 1e3
    p50, p99 = np.percentile(us, [50, 99])
    return f"{p50:8.1f} {p99:8.1f} {us.max():8.1f}"


def run(outcomes: Path, kinds: list[str], limit: int) -> None:
    data = load_outcomes(outcomes)
    split = data.split(0)
    test = [(t, c) for t, c, s in zip(data.texts, data.categories, split, strict=True)]
    test = [pair for pair, s in zip(test, split, strict=True) if s == "test"][:limit]
    print(f"{outcomes.name}: {len(data.models)} models, {len(test)} test prompts timed")
    print(f"{'kind':9} {'file MB':>7}  {'decide wall µs p50/p99/max':>26}  "
          f"{'decide CPU µs p50/p99/max':>26}  {'plan alone wall p50/p99/max':>26}")  # fmt: skip
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp:
            router = Path(tmp) / "router.npz"
            write(train(data, (kind,)), router)
            policy_file = Path(tmp) / "policy.yaml"
            policy_file.write_text(policy_text(outcomes, router))
            policy = load_policy(policy_file)
            size = os.path.getsize(router) / 1e6
        ctxs = [RequestContext(requested="learned", task=c, prompt_tokens=len(t) // 4)
                for t, c in test]  # fmt: skip
        for ctx, (text, _) in list(zip(ctxs, test, strict=True))[:50]:  # warm-up
            decide(ctx, text, policy)
        gc.collect()
        gc.disable()
        timed, cpu, alone = [], [], []
        clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
        for ctx, (text, _) in zip(ctxs, test, strict=True):
            start, start_cpu = clock(), cpu_clock()
            decide(ctx, text, policy)
            timed.append(clock() - start)
            cpu.append(cpu_clock() - start_cpu)
            start = clock()
            plan(ctx, policy)
            alone.append(clock() - start)
        gc.enable()
        row = f"{_percentiles(timed)}  {_percentiles(cpu)}  {_percentiles(alone)}"
        print(f"{kind:9} {size:7.1f}  {row}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outcomes", required=True, type=Path)
    parser.add_argument("--kinds", default="knn,linear,mf,category")
    parser.add_argument("--limit", type=int, default=2000, help="test prompts timed at most")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 vCPU, shared)")
    run(args.outcomes, args.kinds.split(","), args.limit)


if __name__ == "__main__":
    main()
