"""Mixed traffic recorded through a real ``Router`` into a real store, for the replay tests.

The router talks to the in-process HTTP simulator; records go through ``RecordWriter`` to
SQLite or PostgreSQL. The mix has every kind of decision the planner makes: routes picked by
name, alias, task, metadata match and model name, unknown routes, infeasible requests (with
and without ``on_infeasible``), per-request limits, capability and context rejections, open
circuits (the primary model fails for a stretch), and measured statistics that change while
the records arrive (latencies from the attempts, quality from feedback; the router's clock is
moved on so the rolling snapshot is rebuilt)."""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from modelroute.errors import ModelrouteError
from modelroute.outcomes import Outcome
from modelroute.policy import Policy, load_policy_dict
from modelroute.records.stores.base import Store
from modelroute.records.writer import RecordWriter
from modelroute.router import Router
from modelroute.testing import Simulator

from ..gateway.fixtures import sim_config

POLICY: dict[str, Any] = {
    "version": "replay-1",
    "defaults": {
        "timeouts": {"attempt_ms": 2000, "total_ms": 6000},
        "retries": {"max_attempts": 1, "backoff_ms": 1, "max_backoff_ms": 5},
    },
    "models": {
        "primary": {
            "provider": "simulator",
            "model_id": "primary-sim",
            "allow_floating": True,
            "prices": {"input": 1.0, "output": 2.0, "cached_input": 0.5},
            "context_window": 4000,
            "capabilities": ["tools", "json_mode", "logprobs"],
            "latency": {"p50_ms": 20, "p95_ms": 50},
            "quality": {"chat": 0.9, "triage": 0.7, "pick": 0.85},
        },
        "secondary": {
            "provider": "openai",
            "model_id": "secondary-sim",
            "allow_floating": True,
            "prices": {"input": 3.0, "output": 6.0},
            "context_window": 64000,
            "capabilities": ["tools", "json_mode", "logprobs"],
            "latency": {"p50_ms": 30, "p95_ms": 80},
            "quality": {"chat": 0.95, "triage": 0.95, "pick": 0.9, "gold": 0.9},
        },
        "claude": {
            "provider": "anthropic",
            "model_id": "claude-sim",
            "allow_floating": True,
            "prices": {"input": 0.8, "output": 4.0},
            "context_window": 200000,
            "capabilities": ["tools"],
            "latency": {"p50_ms": 40, "p95_ms": 90},
            "quality": {"chat": 0.9, "pick": 0.88, "gold": 0.92},
        },
    },
    "routes": {
        "chat": {
            "aliases": ["assistant"],
            "strategy": {"kind": "fixed", "models": ["primary", "secondary"]},
            "fallbacks": ["claude"],
        },
        "pick": {
            "constraints": {"max_cost_usd": 0.02, "max_latency_ms": 3000, "min_quality": 0.8},
            "strategy": {
                "kind": "cheapest_qualified",
                "models": ["primary", "secondary", "claude"],
            },
            "on_infeasible": "cheapest",
        },
        "strict": {
            "constraints": {"max_cost_usd": 0.000001},
            "strategy": {"kind": "fixed", "models": ["secondary", "claude"]},
        },
        "triage": {
            "strategy": {
                "kind": "cascade",
                "tiers": [["primary"], ["secondary"]],
                "confidence": {"signal": "logprobs", "threshold": 0.6},
            }
        },
        "gold": {
            "match": {"metadata": {"tier": ["gold"]}},
            "objective": "min_latency",
            "strategy": {"kind": "cheapest_qualified", "models": ["secondary", "claude"]},
        },
    },
}


def policy_dict(sim: Simulator) -> dict[str, Any]:
    data: dict[str, Any] = {**POLICY, "models": {}}
    for name, model in POLICY["models"].items():
        base = sim.base_url if model["provider"] == "anthropic" else sim.openai_base_url
        data["models"][name] = {**model, "base_url": base}
    return data


def _request(rng: random.Random, i: int) -> tuple[dict[str, Any], dict[str, str]]:
    """One request of the mix: a body and headers."""
    text = rng.choice(["hello", "what is the capital of france", "unsure about this", "weather"])
    body: dict[str, Any] = {"messages": [{"role": "user", "content": f"{text} #{i}"}]}
    headers: dict[str, str] = {}
    kind = rng.choices(
        ["chat", "alias", "pick", "strict", "triage", "gold", "direct", "unknown", "task"],
        [20, 5, 30, 8, 10, 8, 6, 3, 10],
    )[0]
    body["model"] = {"alias": "assistant", "gold": "auto", "unknown": "nope", "task": "auto"}.get(
        kind, kind
    )
    if kind == "direct":
        body["model"] = rng.choice(["secondary", "claude", "primary"])
    if kind == "gold":
        body["metadata"] = {"tier": "gold", "team": rng.choice(["a", "b"])}
    if kind == "task":
        headers["x-modelroute-task"] = rng.choice(["chat", "pick", "triage"])
    if kind == "pick" and rng.random() < 0.6:  # per-request limits, some tighter than the route
        headers["x-modelroute-max-cost-usd"] = str(rng.choice([0.00001, 0.002, 0.05]))
        headers["x-modelroute-max-latency-ms"] = str(rng.choice([1, 60, 85, 2500]))
        if rng.random() < 0.5:
            headers["x-modelroute-min-quality"] = str(rng.choice([0.5, 0.86, 0.89, 0.97]))
    if rng.random() < 0.15:
        body["messages"][0]["content"] += " word" * 4000  # past the primary's context window
    if rng.random() < 0.1:
        body["response_format"] = {"type": "json_object"}  # claude has no json_mode
    if rng.random() < 0.1:
        body["tools"] = [{"type": "function", "function": {"name": "get_weather"}}]
    if rng.random() < 0.1:
        body["max_tokens"] = rng.choice([16, 3000])
    return body, headers


async def record_traffic(
    store: Store,
    tmp: Path,
    count: int = 1000,
    *,
    outcomes: list[Outcome] | None = None,
    quality: dict[str, Any] | None = None,
) -> tuple[Path, Policy]:
    """Send ``count`` requests through a router recording to ``store``; returns the policy's
    file and the policy. The store is closed afterwards.

    With ``outcomes``, they are in the store first and the router reads measured quality from
    the store (reloaded every 50 ms, so feedback stored as outcomes changes it while the
    records arrive); ``quality`` is the policy's ``defaults.quality``."""
    if outcomes is not None:
        await store.open()
        await store.add_outcomes(outcomes)
        await store.close()
    rng = random.Random(11)
    shift = [0.0]

    def clock() -> float:
        return time.monotonic() + shift[0]

    async with Simulator(sim_config()) as sim:
        data = policy_dict(sim)
        if quality is not None:
            data["defaults"] = {**data["defaults"], "quality": quality}
        policy = load_policy_dict(data)
        path = tmp / "policy.yaml"
        import yaml

        path.write_text(yaml.safe_dump(data))
        writer = RecordWriter(store, tmp / "spool")
        measured: dict[str, Any] = {}
        if outcomes is not None:
            measured = {"store": store, "quality_refresh_s": 0.05}
        router = Router(policy, sink=writer, clock=clock, api_keys={}, **measured)
        await router.start()
        try:
            for i in range(count):
                if i % 20 == 0:
                    shift[0] += 1.1  # the rolling statistics are rebuilt at most once a second
                if i == 300:
                    sim.update_model("primary-sim", faults={"server_error": 1.0})
                if i == 360:
                    sim.update_model("primary-sim", faults={})
                if i == 420:
                    shift[0] += 31  # past the breaker's cool-down: the primary is probed again
                await _one(router, rng, i)
        finally:
            await router.aclose()
            await store.close()
    return path, policy


async def _one(router: Router, rng: random.Random, i: int) -> None:
    body, headers = _request(rng, i)
    try:
        result = await router.chat(body, headers)
    except ModelrouteError:
        return  # infeasible, unknown route, every attempt failed: recorded all the same
    record = result.record
    if record.route == "pick" and record.final_model is not None:
        # The primary disappoints on this route: once measured, it falls below min_quality.
        score = 0.3 if record.final_model == "primary" else 0.95
        await router.feedback(record.request_id, score, None, "test", None)
