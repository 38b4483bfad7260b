"""Seeded traffic for the drift tests: request records and outcomes of one route and model,
spread evenly over a span of time, as the router and the outcome sources store them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelroute.outcomes.outcome import Outcome, OutcomeSource
from modelroute.planner import EMPTY_STATS, RequestContext
from modelroute.records.planner_input import PlannerInput
from modelroute.records.record import Attempt, AttemptResult, RequestRecord, RequestStatus
from modelroute.types import Usage

HOUR = 3600.0
DAY = 24 * HOUR


@dataclass
class Served:
    """How one route's first choice behaves over a span of time."""

    route: str = "chat"
    model: str = "small"
    reported: str = "small-2024-08-06"
    fingerprint: str | None = "fp_small_1"
    latency_ms: float = 200.0  # median; lognormal with sigma 0.4
    cost_usd: float = 0.001  # mean; +-20% uniform
    error_rate: float = 0.02
    escalation_rate: float | None = None  # a cascade: doubted answers go to ``upper``
    upper: str = "large"
    tasks: dict[str, float] = field(default_factory=lambda: {"classify": 0.7, "extract": 0.3})
    prompt_tokens: float = 400.0  # mean of a gamma with shape 4


def records(
    rng: np.random.Generator, s: Served, start: float, end: float, n: int, tag: str = ""
) -> list[RequestRecord]:
    times = np.sort(rng.uniform(start, end, n))
    latency = s.latency_ms * np.exp(rng.normal(0.0, 0.4, n))
    cost = s.cost_usd * rng.uniform(0.8, 1.2, n)
    failed = rng.random(n) < s.error_rate
    doubted = rng.random(n) < (s.escalation_rate or 0.0)
    names = list(s.tasks)
    tasks = rng.choice(len(names), n, p=np.array(list(s.tasks.values())) / sum(s.tasks.values()))
    tokens = rng.gamma(4.0, s.prompt_tokens / 4.0, n).astype(int) + 1
    out = []
    for i in range(n):
        out.append(
            _record(s, f"{tag}{s.route}-{s.model}-{start:.0f}-{i}", float(times[i]),
                    float(latency[i]), float(cost[i]), bool(failed[i]),
                    bool(doubted[i]) and s.escalation_rate is not None,
                    names[int(tasks[i])], int(tokens[i]))
        )  # fmt: skip
    return out


def _record(
    s: Served, rid: str, at: float, latency: float, cost: float, failed: bool, doubted: bool,
    task: str, tokens: int,
) -> RequestRecord:  # fmt: skip
    usage = Usage(tokens, 50)
    first = Attempt(
        model=s.model, provider="openai", model_id=s.model, tier=0, started_ms=0.0,
        latency_ms=latency, usage=None if failed else usage, cost_usd=0.0 if failed else cost,
        reported_model=None if failed else s.reported,
        fingerprint=None if failed else s.fingerprint,
        outcome=AttemptResult.FAILED if failed else (
            AttemptResult.LOW_CONFIDENCE if doubted else AttemptResult.OK
        ),
        failure="server_error" if failed else None,
    )  # fmt: skip
    attempts = [first]
    final: dict[str, Any] = {"final_model": s.model, "final_reported_model": s.reported,
                             "final_fingerprint": s.fingerprint}  # fmt: skip
    if doubted:
        attempts.append(
            Attempt(model=s.upper, provider="openai", model_id=s.upper, tier=1,
                    started_ms=latency, latency_ms=latency, usage=usage, cost_usd=cost * 10,
                    reported_model=f"{s.upper}-2024-05-13", fingerprint="fp_upper")
        )  # fmt: skip
        final = {"final_model": s.upper, "final_reported_model": f"{s.upper}-2024-05-13",
                 "final_fingerprint": "fp_upper"}  # fmt: skip
    context = RequestContext(requested=s.route, task=task, prompt_tokens=tokens)
    record = RequestRecord(
        request_id=rid, started_at=at, route=s.route, task=task, policy_hash="sha256:test",
        attempts=attempts, escalations=int(doubted), usage=None if failed else usage,
        cost_usd=sum(a.cost_usd or 0.0 for a in attempts),
        latency_ms=sum(a.latency_ms for a in attempts),
        planner_input=PlannerInput(context, EMPTY_STATS, None),
    )  # fmt: skip
    if failed:
        record.status, record.failure, record.http_status = (
            RequestStatus.FAILED,
            "server_error",
            502,
        )
    else:
        for key, value in final.items():
            setattr(record, key, value)
    return record


def outcomes(
    rng: np.random.Generator, s: Served, start: float, end: float, n: int, mean: float,
    *, graded: bool = False, source: OutcomeSource = OutcomeSource.EVAL, run: str = "run",
) -> list[Outcome]:  # fmt: skip
    times = np.sort(rng.uniform(start, end, n))
    if graded:
        scores = np.clip(rng.normal(mean, 0.15, n), 0.0, 1.0)
    else:
        scores = (rng.random(n) < mean).astype(float)
    return [
        Outcome(
            source=source,
            grader="exact",
            score=float(scores[i]),
            model=s.model,
            created_at=float(times[i]),
            prompt_id=f"{run}-{start:.0f}-{i}",
            route=s.route,
            reported_model=s.reported,
            fingerprint=s.fingerprint,
            run=f"{run}-{start:.0f}",
        )
        for i in range(n)
    ]
