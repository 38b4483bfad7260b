"""Small policies built in code for planner tests."""

from __future__ import annotations

from typing import Any


def model(
    p50: float = 100,
    p95: float = 200,
    inp: float = 1.0,
    out: float = 2.0,
    ctx: int = 100_000,
    caps: list[str] | None = None,
    quality: dict[str, float] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "provider": "openai",
        "base_url": "http://127.0.0.1:9/v1",
        "model_id": "m-2024-01-01",
        "prices": {"input": inp, "output": out},
        "context_window": ctx,
        "capabilities": caps or [],
        "latency": {"p50_ms": p50, "p95_ms": p95},
        "quality": quality or {},
    }
    spec.update(extra)
    return spec
