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


TOPICS = {
    "easy": ["capital", "colour", "sum", "letter", "animal", "fruit"],
    "hard": ["integral", "theorem", "proof", "eigenvalue", "manifold", "lemma"],
}


def easy_prompt(i: int) -> str:
    word = TOPICS["easy"][i % 6]
    return f"A simple question about the {word} number {i}: what is the {word}?"


def hard_prompt(i: int) -> str:
    word = TOPICS["hard"][i % 6]
    return f"Prove the {word} {i} holds; derive the {word} for the general case."


def write_outcomes(directory: Path, n: int = 300) -> None:
    """A neutral-format outcome set whose right routing is known: ``cheap`` answers the easy
    prompts and fails the hard ones, ``mid`` is right on 3 prompts in 4 of each, ``strong``
    answers all, at 1x / 10x / 100x the price."""
    import csv
    import gzip
    import json

    directory.mkdir(parents=True, exist_ok=True)
    prices = {"cheap": 0.1, "mid": 1.0, "strong": 10.0}
    with (directory / "models.csv").open("w", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(
            ["model", "in_usd_per_mtok", "out_usd_per_mtok", "price_source", "params_b", "notes"]
        )
        for name, price in prices.items():
            w.writerow([name, price, price, "test", "", ""])
    prompts, rows = [], []
    for i in range(n):
        hard = i % 2 == 1
        text = hard_prompt(i) if hard else easy_prompt(i)
        pid = f"syn-{i:04d}"
        prompts.append(
            {
                "id": pid,
                "dataset": "syn",
                "category": "hard" if hard else "easy",
                "prompt": text,
                "reference": None,
            }
        )
        for name, price in prices.items():
            score = {"cheap": 0 if hard else 1, "mid": int(i % 4 != 3), "strong": 1}[name]
            rows.append([pid, name, score, 50, 10, round(60 * price / 1e6, 12)])
    with gzip.open(directory / "prompts.jsonl.gz", "wt") as handle:
        for p in prompts:
            handle.write(json.dumps(p) + "\n")
    with gzip.open(directory / "outcomes.csv.gz", "wt", newline="") as handle:
        w = csv.writer(handle)
        w.writerow(["prompt_id", "model", "score", "input_tokens", "output_tokens", "cost_usd"])
        w.writerows(rows)
