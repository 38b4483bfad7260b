"""The results of an evaluation (or an import): quality per model, and per task and model,
each with its interval and sample size, beside cost and latency.

Outcomes are tallied as they come (an import of 360,000 keeps only its scores in memory);
requests that failed and answers that could not be graded are counted beside them, never
scored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelroute.outcomes import Outcome
from modelroute.outcomes.intervals import estimate
from modelroute.pricing import usd

NO_TASK = "(none)"


@dataclass(slots=True)
class Group:
    scores: list[float] = field(default_factory=list)
    cost_usd: float = 0.0
    priced: int = 0  # outcomes whose cost is known
    latencies_ms: list[float] = field(default_factory=list)
    versions: set[str] = field(default_factory=set)
    failed: int = 0  # the request failed: no answer to grade
    ungraded: int = 0  # answered, but the grader reached no verdict

    def add(self, outcome: Outcome) -> None:
        self.scores.append(outcome.score)
        if outcome.cost_usd is not None:
            self.cost_usd += outcome.cost_usd
            self.priced += 1
        if outcome.latency_ms is not None:
            self.latencies_ms.append(outcome.latency_ms)
        self.versions.add(outcome.version)

    def row(self) -> dict[str, Any]:
        interval = estimate(self.scores)
        latencies = np.asarray(self.latencies_ms, dtype=float)
        p50, p95 = np.percentile(latencies, [50, 95]) if len(latencies) else (None, None)
        return {
            "n": interval.n,
            "mean": interval.mean,
            "low": interval.low,
            "high": interval.high,
            "interval": interval.method,
            "quality": interval.describe(),
            "cost_usd": self.cost_usd if self.priced else None,
            "cost_per_answer_usd": self.cost_usd / self.priced if self.priced else None,
            "p50_latency_ms": None if p50 is None else float(p50),
            "p95_latency_ms": None if p95 is None else float(p95),
            "versions": sorted(self.versions),
            "failed": self.failed,
            "ungraded": self.ungraded,
        }


class Tally:
    """Outcomes and failures, grouped by model and by (task, model)."""

    def __init__(self) -> None:
        self.by_model: dict[str, Group] = {}
        self.by_task: dict[tuple[str, str], Group] = {}

    def _groups(self, model: str, task: str | None) -> tuple[Group, Group]:
        model_group = self.by_model.setdefault(model, Group())
        task_group = self.by_task.setdefault((task or NO_TASK, model), Group())
        return model_group, task_group

    def add(self, outcome: Outcome) -> None:
        for group in self._groups(outcome.model, outcome.task):
            group.add(outcome)

    def add_all(self, outcomes: Iterable[Outcome]) -> None:
        for outcome in outcomes:
            self.add(outcome)

    def failed(self, model: str, task: str | None) -> None:
        for group in self._groups(model, task):
            group.failed += 1

    def ungraded(self, model: str, task: str | None) -> None:
        for group in self._groups(model, task):
            group.ungraded += 1

    def tasks(self) -> set[str]:
        return {task for task, _ in self.by_task}

    def to_dict(self) -> dict[str, Any]:
        return {
            "models": [{"model": m, **g.row()} for m, g in sorted(self.by_model.items())],
            "tasks": [
                {"task": t, "model": m, **g.row()} for (t, m), g in sorted(self.by_task.items())
            ],
        }


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}ms"


def _interval(row: dict[str, Any]) -> str:
    if row["low"] is None:
        return "-"
    return f"[{row['low']:.2f}, {row['high']:.2f}]"


def _cost(value: float | None) -> str:
    return "-" if value is None else usd(value)


def render_rows(rows: list[dict[str, Any]], first: str) -> list[str]:
    """A text table: ``first`` is the leading column's key (model, or task then model)."""
    header = [first, "quality (n)", "95% interval", "cost", "per answer", "p50", "p95", "failed"]
    if first == "task":
        header.insert(1, "model")
    table = [header]
    for row in rows:
        cells = [
            row["quality"],
            _interval(row),
            _cost(row["cost_usd"]),
            _cost(row["cost_per_answer_usd"]),
            _ms(row["p50_latency_ms"]),
            _ms(row["p95_latency_ms"]),
            f"{row['failed']}+{row['ungraded']}" if row["ungraded"] else str(row["failed"]),
        ]
        lead = [row["task"], row["model"]] if first == "task" else [row["model"]]
        table.append([*lead, *cells])
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in table]


def render_report(report: dict[str, Any], by_task: bool) -> str:
    lines = render_rows(report["models"], "model")
    if by_task:
        lines += ["", "by task:", *render_rows(report["tasks"], "task")]
    lines.append(
        "quality: mean score ±half the 95% interval (Wilson for pass/fail, bootstrap for "
        "graded scores); failed: requests without an answer (+ answers no grader could score)"
    )
    return "\n".join(lines)
