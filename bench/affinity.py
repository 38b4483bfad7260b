"""Multi-turn conversations with and without session affinity, on prompt-cache pricing.

Two deployments of one model (``east`` and ``west``: the same prices, gpt-4.1's list prices,
input $2.00, cached input $0.50, output $8.00 per million tokens), each with its own prompt
cache in the simulator (OpenAI's rules: prefixes of 1024 tokens and more, in blocks of 128).
The route sends each request to the deployment with the lower measured p95 latency (a short
rolling window of 8 requests, as latency-based load balancing does), so without affinity a
conversation moves between the deployments and loses its cached prefix at each move.

Per arm (``affinity: none``, ``sticky``, ``adaptive`` with margins 0.25 and 1.0), the same
conversations (a system prompt of ~500 tokens of shared instructions and ~1000 of the
customer's own records, then user turns of ~100 tokens and answers of ~150) run through
the real router, planner and engine against the simulator over HTTP, a fresh simulator
(cold caches) and router per arm. Costs are the records' (priced with the
cached-input rate for the cached tokens the simulator reports). Savings are per conversation,
paired (the same conversation in both arms), with a seeded 95% bootstrap interval.

    python bench/affinity.py [--conversations 48] [--turns 8] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from modelroute import load_policy_text
from modelroute.records.record import MemorySink, RequestRecord
from modelroute.router import Router
from modelroute.testing import Simulator

ANSWER = " ".join(["The answer, explained step by step with care and detail."] * 11)  # ~150 tok
SYSTEM = " ".join(["You are the support assistant of a large retailer; be exact."] * 35)
CONTEXT = " ".join(["order {i}: shipped, item {i}, paid by card, address on file."] * 70)


def sim_config() -> dict[str, Any]:
    model = {
        "latency_ms": {"p50": 40, "p95": 200},
        "tokens_per_second": 100_000,
        "default_answer": ANSWER,
        "prompt_cache": {"min_tokens": 1024, "block_tokens": 128},
    }
    return {"seed": 7, "models": {"east-sim": model, "west-sim": dict(model)}}


MODEL = """
  {name}:
    provider: openai
    base_url: "{base}"
    model_id: {name}-sim
    allow_floating: true
    prices: {{input: 2.0, cached_input: 0.5, output: 8.0}}
    context_window: 128000
    latency: {{p50_ms: 40, p95_ms: 90}}"""


def policy_text(base: str, affinity: str) -> str:
    models = "".join(MODEL.format(name=n, base=base) for n in ("east", "west"))
    return (
        f"version: affinity-bench\nmodels:{models}\nroutes:\n  chat:\n"
        "    objective: min_latency\n"
        "    strategy: {kind: cheapest_qualified, models: [east, west]}\n"
        f"    affinity: {affinity}\n"
    )


ARMS = {
    "none": "none",
    "sticky": "sticky",
    "adaptive (margin 0.25)": "{mode: adaptive, margin: 0.25}",
    "adaptive (margin 1.0)": "{mode: adaptive, margin: 1.0}",
}


async def conversation(router: Router, index: int, turns: int) -> list[RequestRecord]:
    # shared instructions (~500 tokens), then this customer's records (~1000 tokens)
    context = CONTEXT.replace("{i}", str(index))
    messages: list[dict[str, Any]] = [{"role": "system", "content": f"{SYSTEM}\n{context}"}]
    records = []
    for turn in range(turns):
        question = f"Conversation {index}, question {turn + 1}: " + "please help me. " * 22
        messages.append({"role": "user", "content": question})
        result = await router.chat({"model": "chat", "messages": messages})
        messages.append({"role": "assistant", "content": result.completion.content or ""})
        records.append(result.record)
    return records


async def run_arm(affinity: str, args: argparse.Namespace) -> list[list[RequestRecord]]:
    async with Simulator(sim_config()) as sim:
        loop = asyncio.get_running_loop()
        policy = load_policy_text(policy_text(sim.openai_base_url, affinity), "bench.yaml")
        router = Router(policy, api_keys={}, sink=MemorySink(capacity=100_000), clock=loop.time)
        # latency-based balancing on a short window: the faster deployment of the moment
        router.rolling.window = 8
        router.rolling.min_latency_samples = 3
        router.rolling.refresh_s = 0.0
        gate = asyncio.Semaphore(args.concurrency)

        async def one(i: int) -> list[RequestRecord]:
            async with gate:
                return await conversation(router, i, args.turns)

        try:
            return list(await asyncio.gather(*(one(i) for i in range(args.conversations))))
        finally:
            await router.aclose()


def summary(name: str, convs: list[list[RequestRecord]]) -> dict[str, Any]:
    records = [r for c in convs for r in c]
    prompt = sum(r.usage.input_tokens for r in records if r.usage)
    cached = sum(r.usage.cached_input_tokens for r in records if r.usage)
    moves = [sum(a.final_model != b.final_model for a, b in itertools.pairwise(c)) for c in convs]
    actions: dict[str, int] = defaultdict(int)
    for r in records:
        aff = (r.decision or {}).get("affinity")
        actions[aff["action"] if aff else "-"] += 1
    return {
        "arm": name,
        "requests": len(records),
        "failed": sum(r.status != "ok" for r in records),
        "cost": sum(r.cost_usd for r in records),
        "per_conv": [sum(r.cost_usd for r in c) for c in convs],
        "cached_share": cached / prompt if prompt else 0.0,
        "moves": statistics.mean(moves),
        "latency_p50": statistics.median(r.latency_ms for r in records),
        "actions": dict(actions),
    }


def paired_saving(base: list[float], arm: list[float]) -> tuple[float, float, float]:
    """Mean relative saving per conversation, (base - arm) / base, and its 95% interval."""
    saving = (np.asarray(base) - np.asarray(arm)) / np.asarray(base)
    result = stats.bootstrap(
        (saving,), np.mean, confidence_level=0.95, n_resamples=4000, method="percentile",
        rng=np.random.default_rng(20240718),
    )  # fmt: skip
    ci = result.confidence_interval
    return float(saving.mean()), float(ci.low), float(ci.high)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=48)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    results = []
    for name, setting in ARMS.items():
        started = time.perf_counter()
        convs = asyncio.run(run_arm(setting, args))
        results.append(summary(name, convs))
        print(f"# {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    base = results[0]
    n = args.conversations
    print(f"{n} conversations x {args.turns} turns per arm, {args.concurrency} at a time\n")
    print(
        "| affinity | requests | cost USD | cost / conversation | cached share of prompt "
        "tokens | moves / conversation | record latency p50 ms | saving vs none (95% CI, "
        f"n={n}) | initialize / retain / switch |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if r is base:
            saving = "-"
        else:
            mean, low, high = paired_saving(base["per_conv"], r["per_conv"])
            saving = f"{mean:.1%} [{low:.1%}, {high:.1%}]"
        a = r["actions"]
        acts = f"{a.get('initialize', 0)} / {a.get('retain', 0)} / {a.get('switch', 0)}"
        if r is base:
            acts = "-"
        print(
            f"| {r['arm']} | {r['requests']} ({r['failed']} failed) | {r['cost']:.4f} | "
            f"{statistics.mean(r['per_conv']):.5f} | {r['cached_share']:.1%} | "
            f"{r['moves']:.2f} | {r['latency_p50']:.0f} | {saving} | {acts} |"
        )


if __name__ == "__main__":
    main()
