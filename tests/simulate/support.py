"""A tiny outcome set in the neutral format whose right answers are known by construction."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import orjson

# Eight prompts: "small-v1" answers the four easy ones and none of the hard ones, at $1 each;
# "big-v1" answers all eight, at $10 each.
EASY = [f"easy-{i}" for i in range(4)]
HARD = [f"hard-{i}" for i in range(4)]


def write_dataset(
    directory: Path, split: dict[str, str] | None = None, skip: tuple[str, str] | None = None
) -> Path:
    """The set under ``directory``; ``split`` sets a split column; ``skip`` leaves out one
    (prompt, model) row."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = []
    for pid in EASY + HARD:
        task = pid.split("-")[0]
        row = {
            "id": pid,
            "dataset": "toy",
            "category": task,
            "prompt": f"question {pid}",
            "reference": None,
        }
        if split is not None:
            row["split"] = split[pid]
        lines.append(orjson.dumps(row))
    (directory / "prompts.jsonl.gz").write_bytes(gzip.compress(b"\n".join(lines) + b"\n"))
    text = io.StringIO()
    out = csv.writer(text, lineterminator="\n")
    out.writerow(["prompt_id", "model", "score", "input_tokens", "output_tokens", "cost_usd"])
    for pid in EASY + HARD:
        for model, score, cost in (
            ("big-v1", 1, 10.0),
            ("small-v1", 1 if pid in EASY else 0, 1.0),
        ):
            if (pid, model) != skip:
                out.writerow([pid, model, score, 12, 3, cost])
    (directory / "outcomes.csv.gz").write_bytes(gzip.compress(text.getvalue().encode()))
    (directory / "models.csv").write_text(
        "model,in_usd_per_mtok,out_usd_per_mtok,price_source,params_b,notes\n"
        "big-v1,10,10,test,,\nsmall-v1,1,1,test,,\n"
    )
    return directory


MODELS = """
models:
  small:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model_id: small-v1
    prices: {input: 1, output: 1}
    context_window: 8000
    latency: {p50_ms: 100, p95_ms: 200}
  big:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model_id: big-v1
    prices: {input: 10, output: 10}
    context_window: 8000
    latency: {p50_ms: 100, p95_ms: 200}
"""

PER_TASK = (
    MODELS
    + """
routes:
  easy:
    strategy: {kind: fixed, models: [small]}
  hard:
    strategy: {kind: fixed, models: [big]}
"""
)

CASCADE = (
    MODELS
    + """
routes:
  answer:
    strategy:
      kind: cascade
      tiers: [[small], [big]]
      confidence: {signal: verifier, verifier: big, threshold: 0.5}
"""
)

CHEAPEST = (
    MODELS
    + """
routes:
  answer:
    strategy: {kind: cheapest_qualified, models: [small, big]}
"""
)
