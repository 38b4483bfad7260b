"""Seeded traffic for the dashboard's tests, and the figures computed straight from the raw
rows (independently of ``rollups.py``: histogram edges by bisection, plain loops)."""

from __future__ import annotations

import bisect
import math
import random
from collections import defaultdict
from typing import Any

import orjson

from modelroute.records.record import Attempt, RequestRecord, RequestStatus
from modelroute.records.stores.base import Store
from modelroute.types import Usage

T0 = 1_767_225_600.0  # 2026-01-01 00:00:00 UTC: a whole hour
ROUTES = ("chat", "triage", None)
MODELS = {"chat": ("small", "large"), "triage": ("mini", "small"), None: ("small",)}
HASHES = ("sha256:" + "aa" * 32, "sha256:" + "bb" * 32)
# Histogram edges as the docs state them: 10^(k/8) ms for k = 0..40.
EDGES = [10 ** (k / 8) for k in range(41)]


def record(rng: random.Random, i: int, at: float) -> RequestRecord:
    route = rng.choice(ROUTES)
    first, *rest = MODELS[route]
    second = rest[0] if rest else first
    kind = rng.choices(["first", "fallback", "escalated", "failed"], [70, 12, 8, 10])[0]
    latency = math.exp(rng.uniform(math.log(0.5), math.log(200_000)))
    cost = round(rng.uniform(0, 0.01), 6)
    tried = [Attempt(model=first, provider="openai", model_id=f"{first}-id", tier=0,
                     started_ms=0.0, latency_ms=latency / 2,
                     outcome="failed" if kind != "first" else "ok",
                     failure="timeout" if kind != "first" else None)]  # fmt: skip
    final: str | None = first
    if kind in ("fallback", "escalated"):
        final = second
        tried.append(Attempt(model=second, provider="openai", model_id=f"{second}-id",
                             tier=1 if kind == "escalated" else 0, started_ms=latency / 2,
                             latency_ms=latency / 2, reported_model=f"{second}-v1",
                             usage=Usage(100, 20), cost_usd=cost))  # fmt: skip
    elif kind == "failed":
        final = None
    rejections = [
        {"model": m, "reason": reason, "value": 1.0, "limit": 0.5}
        for m, reason in (("huge", "cost_ceiling"), ("slow", "latency_budget"))
        if rng.random() < 0.4
    ]
    decision = {
        "route": route or "", "strategy": "cheapest-qualified", "objective": "cost",
        "selected_by": "name", "chosen": first, "relaxed": None, "feasible": True,
        "tiers": [[{"model": first, "fallback": False, "cost_usd": 0.001,
                    "latency_p95_ms": 900.0, "latency_source": "prior", "quality": 0.8,
                    "quality_source": "prior", "quality_samples": 0, "waived": []},
                   {"model": second, "fallback": True, "cost_usd": 0.002,
                    "latency_p95_ms": 1200.0, "latency_source": "prior", "quality": None,
                    "quality_source": "unknown", "quality_samples": 0, "waived": []}]],
        "rejections": rejections,
        "limits": {"max_cost_usd": 0.01, "max_latency_ms": None, "min_quality": 0.7},
        "notes": [],
    }  # fmt: skip
    status = RequestStatus.OK if final is not None else RequestStatus.FAILED
    if rng.random() < 0.03:
        status = RequestStatus.STREAM_ERROR  # answered, then broke: an error with a model
    return RequestRecord(
        request_id=f"req-{i:06d}", started_at=at, route=route, policy_hash=HASHES[i % 7 == 0],
        policy_version="v2" if i % 7 == 0 else "v1", decision=decision, attempts=tried,
        final_model=final, final_reported_model=None if final is None else f"{final}-v1",
        escalations=1 if kind == "escalated" else 0, status=status,
        cost_usd=cost if final is not None else 0.0, latency_ms=latency,
        prompt=f"prompt {i}", answer="ok" if final else None,
    )  # fmt: skip


def traffic(n: int, seed: int = 7, span_s: float = 3 * 3600.0) -> list[RequestRecord]:
    rng = random.Random(seed)
    times = sorted(T0 + rng.uniform(-600.0, span_s) for _ in range(n))
    return [record(rng, i, at) for i, at in enumerate(times)]


async def raw_rows(store: Store) -> list[tuple[Any, ...]]:
    return await store.read_sql(
        "SELECT started_at, route, final_model, status, latency_ms, cost_usd, decision_reason, "
        "policy_hash FROM requests"
    )


def expected(rows: list[tuple[Any, ...]], width: int) -> dict[tuple[Any, ...], list[Any]]:
    """(bucket, route, model) -> [requests, errors, fallbacks, escalations, spend, hist...]"""
    out: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, 0, 0.0] + [0] * 42)
    for at, route, model, status, latency, cost, reason, _ in rows:
        row = out[(int(at // width) * width, route or "", model or "")]
        served = orjson.loads(reason)[6] if reason else None
        row[0] += 1
        row[1] += status != "ok"
        row[2] += served == "fallback"
        row[3] += served == "escalated"
        row[4] += cost
        row[5 + bisect.bisect_right(EDGES, latency)] += 1
    return dict(out)


def expected_rejections(rows: list[tuple[Any, ...]], width: int) -> dict[tuple[Any, ...], int]:
    out: dict[tuple[Any, ...], int] = defaultdict(int)
    for at, route, _, _, _, _, reason, _ in rows:
        for model, why in orjson.loads(reason)[5] if reason else ():
            out[(int(at // width) * width, route or "", model, why)] += 1
    return dict(out)


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def close(shown: float | None, exact: float) -> bool:
    """A percentile read from the histogram is within its bucket of the exact one (±16%);
    at or past the histogram's top (100 s) it reads as 100 s."""
    if shown is None:
        return False
    if exact >= 1e5:
        return shown == 1e5
    return abs(math.log10(shown / exact)) <= 1 / 16 + 1e-12
