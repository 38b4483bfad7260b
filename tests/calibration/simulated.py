"""A simulated cascade dataset with a known relation between confidence and correctness.

The cheap model's confidence c is uniform on [0, 1] and its answer is right with probability
c (a calibrated signal); the strong model is right with probability 0.95 whatever c is. A
threshold t then gives the cascade an expected accuracy of (1 - t^2) / 2 + 0.95 t, which
reaches 0.90 near t = 0.64 and at most 0.951 (t = 0.95): accuracy >= 0.9 can be met, 0.99
cannot. It is logged as ``signal``; with ``noise`` a second signal, unrelated to
correctness, is logged too.
"""

from __future__ import annotations

import random

from modelroute.outcomes import Outcome, OutcomeSource

CHEAP_COST = 0.0001
STRONG_COST = 0.001
STRONG_ACCURACY = 0.95


def expected_accuracy(threshold: float) -> float:
    return (1 - threshold**2) / 2 + STRONG_ACCURACY * threshold


def simulated_outcomes(
    prompts: int,
    *,
    route: str = "triage",
    cheap: str = "small",
    strong: str = "large",
    seed: int = 1,
    noise: bool = False,
    signal: str = "logprobs",
) -> list[Outcome]:
    rng = random.Random(seed)
    out: list[Outcome] = []
    for i in range(prompts):
        confidence = rng.random()
        confidences = {signal: confidence}
        if noise:
            confidences["label_probability" if signal == "logprobs" else "logprobs"] = rng.random()
        prompt = f"p{i:05d}"
        created = 1_700_000_000.0 + i
        cheap_right = float(rng.random() < confidence)
        strong_right = float(rng.random() < STRONG_ACCURACY)
        for model, score, cost, logged in (
            (cheap, cheap_right, CHEAP_COST, confidences),
            (strong, strong_right, STRONG_COST, {}),
        ):
            out.append(
                Outcome(
                    OutcomeSource.EVAL,
                    "exact",
                    score,
                    model,
                    created,
                    prompt_id=prompt,
                    route=route,
                    run="sim",
                    cost_usd=cost,
                    confidences=logged,
                )
            )
    return out


POLICY = """\
# A two-tier cascade: the small model answers first.
version: calibration-test

models:
  small:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model_id: small-2025-01-01
    prices: {input: 0.1, output: 0.4}
    context_window: 8000
    capabilities: [logprobs]
    latency: {p50_ms: 100, p95_ms: 300}
  large:
    provider: openai
    base_url: http://127.0.0.1:9/v1
    model_id: large-2025-01-01
    prices: {input: 1.0, output: 4.0}
    context_window: 8000
    capabilities: [logprobs]
    latency: {p50_ms: 400, p95_ms: 1200}

routes:
  triage:
    strategy:
      kind: cascade
      tiers: [[small], [large]]
      confidence:
        signal: logprobs     # the small model's mean token probability
        threshold: 0.5       # a guess, until calibrated
        labels: [billing, bug, other]
  plain:
    strategy: {kind: fixed, models: [small]}
"""
