"""One result of a drift check: what was compared, what was seen, and whether it alerts.

A finding's ``condition`` names what it is about (its kind and subject, not its figures), so
the same condition found again by a later check is recognised and not announced twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["alert", "ok", "not_enough_data"]

# Every kind of finding, in the order a report lists them.
KINDS = (
    "version",  # a model reports a version (model or fingerprint) it did not report before
    "pinned",  # a pinned model reports a version other than the pinned id
    "quality",  # mean outcome score down
    "latency",  # latency up (median, whole distribution)
    "cost",  # cost per request up
    "error_rate",  # the route's first choice fails more often
    "escalation_rate",  # a cascade's first tier is doubted more often
    "prompt_tokens",  # the distribution of prompt sizes changed
    "task_mix",  # the shares of tasks changed
    "route_mix",  # the shares of routes changed
    "routing",  # a route's chosen model no longer meets its min_quality
)


@dataclass(slots=True)
class Finding:
    kind: str
    subject: dict[str, str | None]  # route, model, version, source, ... (what it is about)
    summary: str  # one line: what was seen, with its figures
    status: Status = "ok"
    n_current: int | None = None
    n_baseline: int | None = None
    test: str | None = None
    statistic: float | None = None
    p_value: float | None = None
    p_adjusted: float | None = None
    effect: dict[str, float] = field(default_factory=dict)
    # the effect is at least its threshold: significant and large enough is an alert
    large_enough: bool = False
    evidence: dict[str, Any] = field(default_factory=dict)

    @property
    def tested(self) -> bool:
        """Carries a p-value, to be corrected with the check's other tests."""
        return self.p_value is not None and self.status != "not_enough_data"

    @property
    def condition(self) -> str:
        """``latency|route=chat|model=small|version=small-2024-08-06``."""
        parts = [self.kind, *(f"{k}={'' if v is None else v}" for k, v in self.subject.items())]
        return "|".join(parts)

    def decide(self, alpha: float) -> None:
        """A tested finding alerts when its corrected p-value is at most ``alpha`` and its
        effect is large enough."""
        if self.tested and self.p_adjusted is not None:
            alert = self.p_adjusted <= alpha and self.large_enough
            self.status = "alert" if alert else "ok"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "condition": self.condition,
            "status": self.status,
            "subject": self.subject,
            "summary": self.summary,
            "n_current": self.n_current,
            "n_baseline": self.n_baseline,
            "test": self.test,
            "statistic": self.statistic,
            "p_value": self.p_value,
            "p_adjusted": self.p_adjusted,
            "effect": self.effect,
            "evidence": self.evidence,
        }


def not_enough(
    kind: str, subject: dict[str, str | None], n: int, base_n: int, need: int
) -> Finding:
    return Finding(
        kind,
        subject,
        f"not enough data: n={n} current, n={base_n} baseline (needs {need} in each)",
        status="not_enough_data",
        n_current=n,
        n_baseline=base_n,
    )
