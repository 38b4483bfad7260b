"""What a drift check compares (two windows of time) and when a difference is an alert.

The current window is the last ``current_s`` seconds before ``end``; the baseline is the
``baseline_s`` seconds before that. Every regression is the current window against the
baseline; a difference alerts only when its test is significant after the correction for the
number of tests run (Benjamini-Hochberg at ``alpha``) **and** its effect is at least the
threshold below, and never on fewer than the minimum samples in either window.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Windows:
    baseline_start: float  # unix seconds
    current_start: float
    end: float

    @classmethod
    def ending(cls, end: float, current_s: float, baseline_s: float) -> Windows:
        if not current_s > 0 or not baseline_s > 0:
            raise ValueError("both windows must be longer than zero")
        return cls(end - current_s - baseline_s, end - current_s, end)

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class Thresholds:
    # the false discovery rate over all the tests of one check (Benjamini-Hochberg)
    alpha: float = 0.01
    # fewer than these in either window: "not enough data", never an alert
    min_requests: int = 100
    min_outcomes: int = 30
    # the most values a distribution test reads per group and window (a random sample)
    sample_size: int = 2000
    # effects, current against baseline, below which a significant difference is no alert
    latency_ratio: float = 1.25  # median latency, current / baseline
    cost_ratio: float = 1.25  # mean cost per request, current / baseline
    error_increase: float = 0.02  # error rate, current - baseline (2 percentage points)
    escalation_increase: float = 0.05  # cascade escalation rate, current - baseline
    quality_drop: float = 0.05  # mean outcome score, baseline - current
    prompt_tokens_ks: float = 0.1  # Kolmogorov-Smirnov distance of prompt token counts
    mix_psi: float = 0.2  # population stability index of the task or route shares

    def __post_init__(self) -> None:
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be between 0 and 1, got {self.alpha}")
        for name in ("min_requests", "min_outcomes", "sample_size"):
            if getattr(self, name) < 2:
                raise ValueError(f"{name} must be at least 2, got {getattr(self, name)}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
