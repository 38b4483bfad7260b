"""Router files and policies for the learned-routing tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from modelroute.learned.format import save_router

MODELS = ("cheap", "mid", "strong")


def category_router(path: Path, threshold: float = 0.7, models: tuple[str, ...] = MODELS) -> str:
    """A hand-made ``category`` router: known scores per task label. Returns the file hash."""
    table = np.array([[0.9, 0.95, 0.97], [0.3, 0.8, 0.9], [0.1, 0.2, 0.6]], np.float32)
    header = {
        "kind": "category",
        "models": list(models),
        "params": {"categories": ["easy", "medium", "hard"]},
        "threshold": threshold,
        "target": 0.95,
    }
    prior = np.array([0.4, 0.6, 0.8], np.float32)
    return save_router(
        path, header, {"table": table[:, : len(models)], "prior": prior[: len(models)]}
    )


def policy_yaml(router: str = "router.npz", extra: str = "") -> str:
    models = "\n".join(
        f"""  {name}:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model_id: {name}-2024-01-01
    prices: {{input: {price}, output: {price}}}
    context_window: 100000
    latency: {{p50_ms: 100, p95_ms: 200}}"""
        for name, price in zip(MODELS, (0.1, 1.0, 10.0), strict=True)
    )
    return f"""models:
{models}
routes:
  smart:
    strategy:
      kind: learned
      models: [cheap, mid, strong]
      router: {router}
{extra}"""
