"""Records of every shape the router produces, for the records-stream sinks' tests.

``SAMPLES`` maps a name to a builder; ``FALLBACK`` names the records that count as fallbacks.
Each record's totals are summed from its attempts, as ``RecordBuilder`` does."""

from __future__ import annotations

from collections.abc import Callable

from modelroute.records.record import Attempt, RequestRecord
from modelroute.types import Usage

T0 = 1_767_000_000.125  # unix seconds


def attempt(
    model: str, tier: int = 0, at: float = 0.0, took: float = 100.0, **kw: object
) -> Attempt:
    a = Attempt(
        model=model,
        provider="openai",
        model_id=f"{model}-id",
        tier=tier,
        started_ms=at,
        latency_ms=took,
    )
    for key, value in kw.items():
        setattr(a, key, value)
    return a


def record(n: int, attempts: list[Attempt], latency_ms: float, **kw: object) -> RequestRecord:
    r = RequestRecord(
        request_id=f"req-{n}",
        started_at=T0 + n,
        route="support",
        policy_hash="sha256:abc",
        attempts=attempts,
        latency_ms=latency_ms,
    )
    for key, value in kw.items():
        setattr(r, key, value)
    used = [a.usage for a in attempts if a.usage is not None]
    if used:
        r.usage = Usage(
            *(
                sum(getattr(u, f) for u in used)
                for f in (
                    "input_tokens",
                    "output_tokens",
                    "cached_input_tokens",
                    "cache_write_tokens",
                    "reasoning_tokens",
                )
            )
        )
    r.cost_usd = sum(a.cost_usd or 0.0 for a in attempts)
    return r


def success() -> RequestRecord:
    a = attempt(
        "small",
        took=240.0,
        usage=Usage(100, 20, cached_input_tokens=10),
        cost_usd=1e-4,
        reported_model="small-2025-01-01",
    )
    return record(
        1, [a], 250.0, final_model="small", ttft_ms=250.0, final_reported_model="small-2025-01-01"
    )


def fallback() -> RequestRecord:
    failed = attempt(
        "small",
        took=40.0,
        outcome="failed",
        failure="server_error",
        status=500,
        message="upstream 500",
    )
    ok = attempt(
        "big", at=45.0, took=850.0, usage=Usage(100, 30), cost_usd=0.003, provider="anthropic"
    )
    return record(2, [failed, ok], 900.0, final_model="big", ttft_ms=900.0)


def failure() -> RequestRecord:
    attempts = [
        attempt("small", took=10_000.0, outcome="failed", failure="timeout"),
        attempt("small", at=10_050.0, took=10_000.0, outcome="failed", failure="timeout"),
        attempt("big", at=20_060.0, took=0.0, outcome="skipped", message="circuit open"),
    ]
    return record(
        3,
        attempts,
        20_070.0,
        status="failed",
        failure="timeout",
        http_status=504,
        error="timeout: deadline",
    )


def stream() -> RequestRecord:
    a = attempt(
        "small",
        took=2_000.0,
        ttft_ms=120.0,
        usage=Usage(50, 200, reasoning_tokens=80),
        cost_usd=2e-4,
    )
    return record(4, [a], 2_100.0, route="chat", streamed=True, final_model="small", ttft_ms=120.0)


def escalation() -> RequestRecord:
    attempts = [
        attempt(
            "small",
            took=300.0,
            outcome="low_confidence",
            usage=Usage(80, 10),
            cost_usd=5e-5,
            confidence=0.2,
        ),
        attempt(
            "judge",
            tier=-1,
            at=300.0,
            took=200.0,
            usage=Usage(120, 2),
            cost_usd=1e-4,
            message="verifier",
        ),
        attempt(
            "big",
            tier=1,
            at=510.0,
            took=2_400.0,
            usage=Usage(80, 60, cache_write_tokens=40),
            cost_usd=0.004,
        ),
    ]
    return record(
        5, attempts, 3_000.0, route="cascade", final_model="big", escalations=1, ttft_ms=3_000.0
    )


def unpriced() -> RequestRecord:
    a = attempt("local", took=35.0, usage=Usage(10, 10), cost_usd=0.0, price_known=False)
    return record(6, [a], 40.0, route="chat", final_model="local", price_unknown=True, ttft_ms=40.0)


def rejected() -> RequestRecord:
    return record(
        7, [], 0.3, route=None, status="rejected", http_status=404, error="unknown route 'nope'"
    )


def stream_error() -> RequestRecord:
    a = attempt(
        "small",
        took=480.0,
        ttft_ms=90.0,
        outcome="failed",
        failure="server_error",
        usage=Usage(50, 5),
        cost_usd=3e-5,
        message="connection reset",
    )
    return record(
        8,
        [a],
        500.0,
        route="chat",
        streamed=True,
        final_model="small",
        ttft_ms=90.0,
        status="stream_error",
        failure="server_error",
    )


def tier_failed() -> RequestRecord:
    attempts = [
        attempt("small", took=20.0, outcome="failed", failure="rate_limited", status=429),
        attempt("big", tier=1, at=25.0, took=700.0, usage=Usage(10, 10), cost_usd=1e-3),
    ]
    return record(9, attempts, 730.0, route="cascade", final_model="big", ttft_ms=730.0)


SAMPLES: dict[str, Callable[[], RequestRecord]] = {
    f.__name__: f
    for f in (
        success,
        fallback,
        failure,
        stream,
        escalation,
        unpriced,
        rejected,
        stream_error,
        tier_failed,
    )
}
FALLBACK = {"fallback", "tier_failed"}


def all_records() -> list[RequestRecord]:
    return [build() for build in SAMPLES.values()]
