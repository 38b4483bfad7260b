"""Learned routing's cost per request: ``decide`` (score the prompt, then plan) timed call by
call on held-out prompts, beside ``plan`` alone on the same requests, per scorer kind.

For each kind a router is trained on the outcome directory's train split (as ``modelroute
train --kind KIND [--features F]`` does), loaded through a policy whose learned route names
it, and every test-split prompt is routed ``--reps`` times (in rounds, after a warm-up). Each
call is measured three ways, because on a shared, loaded VM the wall clock also counts the
time the scheduler gave the core to someone else:

- the thread's CPU time (``thread_time_ns``): the work the call does;
- the wall time (``perf_counter_ns``) of every call, and of the calls during which this
  thread was not preempted (no involuntary context switch, ``getrusage(RUSAGE_THREAD)``,
  read outside the timed interval): the wall time a request costs when it holds the core;
- each prompt's fastest wall time over its reps (a prompt's own cost, with the scheduler's
  interruptions filtered by repetition), its p99 over the prompts.

The goal is p99 <= 2 ms per request.

    python bench/learned_inference.py --outcomes ../shared/data/mmlu_pro [--kinds knn,mf]
        [--reps 5] [--features embedding --limit 200 --reps 1]
"""

from __future__ import annotations

import argparse
import csv
import gc
import os
import resource
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


def _p(values: list[float] | np.ndarray[Any, Any], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float) / 1e3, q))


def _switches() -> int:
    """Involuntary context switches of this thread so far (the scheduler's preemptions)."""
    return resource.getrusage(resource.RUSAGE_THREAD).ru_nivcsw


def _time(policy: Any, ctxs: list[RequestContext], texts: list[str], reps: int) -> dict[str, Any]:
    """Every prompt routed ``reps`` times (in rounds over the whole set): per call the wall
    time, the thread's CPU time and whether the scheduler preempted it."""
    clock, cpu_clock = time.perf_counter_ns, time.thread_time_ns
    wall = np.zeros((reps, len(texts)), np.int64)
    cpu = np.zeros((reps, len(texts)), np.int64)
    preempted = np.zeros((reps, len(texts)), bool)
    alone: list[int] = []
    gc.collect()
    gc.disable()
    try:
        for r in range(reps):
            for i, (ctx, text) in enumerate(zip(ctxs, texts, strict=True)):
                before = _switches()
                start, start_cpu = clock(), cpu_clock()
                decide(ctx, text, policy)
                wall[r, i], cpu[r, i] = clock() - start, cpu_clock() - start_cpu
                preempted[r, i] = _switches() != before
                if r == 0:
                    start = clock()
                    plan(ctx, policy)
                    alone.append(clock() - start)
    finally:
        gc.enable()
    quiet = wall[~preempted]
    return {
        "calls": wall.size,
        "cpu_p50": _p(cpu.ravel(), 50), "cpu_p99": _p(cpu.ravel(), 99),
        "wall_p50": _p(wall.ravel(), 50), "wall_p99": _p(wall.ravel(), 99),
        "quiet_n": int(quiet.size),
        "quiet_p99": _p(quiet, 99) if quiet.size else float("nan"),
        "best_p99": _p(wall.min(axis=0), 99),  # each prompt's fastest of its reps
        "plan_p50": _p(alone, 50),
    }  # fmt: skip


HEAD = (
    "| kind | features | calls | CPU µs p50 | CPU µs p99 | wall µs p50 | wall µs p99 (all) "
    "| wall µs p99, calls not preempted (n) | wall µs p99, best of reps per prompt "
    "| `plan` alone µs p50 |"
)


def run(outcomes: Path, kinds: list[str], limit: int, reps: int, features: str) -> None:
    data = load_outcomes(outcomes)
    split = data.split(0)
    test = [(t, c) for t, c, s in zip(data.texts, data.categories, split, strict=True)]
    test = [pair for pair, s in zip(test, split, strict=True) if s == "test"][:limit]
    print(f"{outcomes.name}: {len(data.models)} models, {len(test)} test prompts x {reps} reps")
    print(HEAD)
    print("|" + "---|" * HEAD.count(" | ") + "---|")
    for kind in kinds:
        with tempfile.TemporaryDirectory() as tmp:
            router = Path(tmp) / "router.npz"
            write(train(data, (kind,), features=features), router)
            policy_file = Path(tmp) / "policy.yaml"
            policy_file.write_text(policy_text(outcomes, router))
            policy = load_policy(policy_file)
        ctxs = [RequestContext(requested="learned", task=c, prompt_tokens=len(t) // 4)
                for t, c in test]  # fmt: skip
        texts = [t for t, _ in test]
        for ctx, text in list(zip(ctxs, texts, strict=True))[:50]:  # warm-up
            decide(ctx, text, policy)
        m = _time(policy, ctxs, texts, reps)
        print(
            f"| {kind} | {features} | {m['calls']:,} | {m['cpu_p50']:,.0f} | {m['cpu_p99']:,.0f} "
            f"| {m['wall_p50']:,.0f} | {m['wall_p99']:,.0f} | {m['quiet_p99']:,.0f} "
            f"({m['quiet_n']:,}) | {m['best_p99']:,.0f} | {m['plan_p50']:,.0f} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--outcomes", required=True, type=Path)
    parser.add_argument("--kinds", default="knn,linear,mf,category")
    parser.add_argument("--limit", type=int, default=2000, help="test prompts timed at most")
    parser.add_argument("--reps", type=int, default=5, help="times each prompt is routed")
    parser.add_argument("--features", default="hashed", choices=["hashed", "embedding"])
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} (2 vCPU, shared)")
    run(args.outcomes, args.kinds.split(","), args.limit, args.reps, args.features)
    print(f"load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
