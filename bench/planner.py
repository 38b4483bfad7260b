"""Planner speed: decisions per second and p50/p99 microseconds per decision.

A policy of 12 models and 20 routes (fixed, cheapest-qualified and cascade strategies, with
constraints, fallbacks and match rules), measured stats for some models, and a mix of requests
that select routes by name, alias, task label, metadata match and default. Each decision is
timed on its own with perf_counter_ns; the feature extraction (token estimate) that precedes
planning on the request path is measured in the same run for comparison.

    python bench/planner.py [--decisions 200000]
"""

from __future__ import annotations

import argparse
import gc
import platform
import statistics
import time
from typing import Any

from modelroute import load_policy_dict, plan, request_context
from modelroute.planner import ModelStats, RequestContext, StatsSnapshot

CAPS = [["tools", "json_mode", "logprobs"], ["tools", "vision"], ["logprobs"], ["tools"]]


def build_policy() -> Any:
    models = {}
    for i in range(12):
        models[f"m{i}"] = {
            "provider": "openai",
            "base_url": "http://127.0.0.1:9/v1",
            "model_id": f"model-{i}-2024-08-06",
            "prices": {"input": 0.1 * (i + 1) ** 1.5, "output": 0.4 * (i + 1) ** 1.5},
            "context_window": 8192 * (1 + i % 4),
            "capabilities": CAPS[i % 4] + ["logprobs"],
            "latency": {"p50_ms": 200 + 90 * i, "p95_ms": 600 + 250 * i},
            "quality": {f"r{j}": min(0.99, 0.55 + 0.04 * i) for j in range(20)},
        }
    routes: dict[str, Any] = {}
    for j in range(20):
        pick = [f"m{(j + k) % 12}" for k in range(5)]
        route: dict[str, Any] = {
            "aliases": [f"alias-{j}"],
            "constraints": {
                "max_cost_usd": 0.002 + 0.004 * (j % 5),
                "max_latency_ms": 2500 + 500 * (j % 4),
                "min_quality": 0.6 + 0.01 * (j % 10),
            },
            "fallbacks": [f"m{(j + 7) % 12}"],
            "on_infeasible": ["reject", "cheapest", "strongest", "relax_latency"][j % 4],
        }
        if j % 3 == 0:
            route["strategy"] = {
                "kind": "cascade",
                "tiers": [pick[:2], pick[2:]],
                "confidence": {"signal": "logprobs", "threshold": 0.8},
            }
        elif j % 3 == 1:
            route["strategy"] = {"kind": "cheapest_qualified", "models": pick}
            route["objective"] = ["min_cost", "min_latency", "max_quality"][j % 3]
        else:
            route["strategy"] = {"kind": "fixed", "models": pick}
        if j % 4 == 2:
            route["match"] = {"metadata": {"document_type": [f"type-{j}"]}}
        routes[f"r{j}"] = route
    return load_policy_dict(
        {"models": models, "routes": routes, "defaults": {"route": "r0"}}, "bench-policy"
    )


def build_requests() -> list[tuple[dict[str, Any], dict[str, str]]]:
    text = "Please classify this support ticket about a failed payment. " * 6
    out = []
    for j in range(20):
        body: dict[str, Any] = {
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": text},
            ]
        }
        headers: dict[str, str] = {}
        way = j % 5
        if way == 0:
            body["model"] = f"r{j}"
        elif way == 1:
            body["model"] = f"alias-{j}"
        elif way == 2:
            body["metadata"] = {"document_type": f"type-{j}"}
        elif way == 3:
            headers["x-modelroute-task"] = f"r{j}"
            headers["x-modelroute-max-cost-usd"] = "0.003"
        if j % 2:
            body["max_tokens"] = 300
            body["tools"] = [{"type": "function", "function": {"name": "lookup", "parameters": {}}}]
        out.append((body, headers))
    return out


def timed(fn: Any, args: list[Any], n: int) -> list[int]:
    samples = []
    perf = time.perf_counter_ns
    count = len(args)
    for i in range(n):
        a = args[i % count]
        t0 = perf()
        fn(*a)
        samples.append(perf() - t0)
    return samples


def pct(samples: list[int], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--decisions", type=int, default=200_000)
    n = parser.parse_args().decisions
    policy = build_policy()
    stats = StatsSnapshot(
        by_model={f"m{i}": ModelStats(latency_p95_ms=500 + 300 * i) for i in range(0, 12, 2)},
        by_route={(f"r{j}", f"m{j % 12}"): ModelStats(quality=0.9) for j in range(20)},
        open_circuits=frozenset({"m5"}),
    )
    raw = build_requests()
    contexts: list[RequestContext] = [request_context(b, h) for b, h in raw]
    # Warm up, then measure with the collector paused so a GC pass is not billed to one call.
    timed(plan, [(c, policy, stats) for c in contexts], 20_000)
    gc.collect()
    gc.disable()
    try:
        start = time.perf_counter()
        plan_ns = timed(plan, [(c, policy, stats) for c in contexts], n)
        wall = time.perf_counter() - start
        feature_ns = timed(request_context, raw, n // 10)
    finally:
        gc.enable()
    decisions = [plan(c, policy, stats) for c in contexts]
    feasible = sum(1 for d in decisions if d.tiers)
    print(
        f"python {platform.python_version()} on {platform.machine()}; policy: "
        f"{len(policy.models)} models, {len(policy.routes)} routes; {len(contexts)} request "
        f"shapes ({feasible} routed, {len(contexts) - feasible} infeasible)"
    )
    print(
        f"plan():            {n / wall:,.0f} decisions/s (incl. timer), "
        f"p50 {pct(plan_ns, 0.5):.1f} us, p99 {pct(plan_ns, 0.99):.1f} us, "
        f"max {max(plan_ns) / 1000:.0f} us"
    )
    print(
        f"request_context(): p50 {pct(feature_ns, 0.5):.1f} us, "
        f"p99 {pct(feature_ns, 0.99):.1f} us (token estimate of a ~90-token prompt)"
    )
    print(
        f"ratio plan/features at p50: {pct(plan_ns, 0.5) / pct(feature_ns, 0.5):.2f}; "
        f"mean plan {statistics.fmean(plan_ns) / 1000:.1f} us"
    )
    print(f"goal p99 <= 50 us: {'met' if pct(plan_ns, 0.99) <= 50 else 'NOT met'}")


if __name__ == "__main__":
    main()
