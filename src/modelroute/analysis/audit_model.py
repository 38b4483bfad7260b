"""The audit's findings as plain data: per task, and for the traffic as a whole.

``to_dict`` gives what ``modelroute audit --json`` prints and the HTML report draws.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from modelroute.analysis.audit_cache import CacheSavings
from modelroute.analysis.audit_quality import Evidence
from modelroute.analysis.audit_savings import Savings
from modelroute.analysis.audit_sql import Totals, Usage

Status = Literal[
    "over_provisioned",  # served by a costlier model than the cheapest qualified one
    "right_sized",  # no cheaper model meets the threshold, on the evidence
    "no_cheaper_candidate",  # no cheaper model to consider (the route lists none)
    "not_enough_evidence",  # a cheaper model might qualify: too few outcomes to say
    "no_threshold",  # nothing to qualify against (no min_quality, no --min-quality)
    "unpriced",  # no prices for the models involved
]


@dataclass(frozen=True, slots=True)
class Reason:
    """Why some of a task's requests went to a model: the decision's parts, and how many."""

    requests: int
    selected_by: str | None
    strategy: str | None
    objective: str | None
    relaxed: str | None
    min_quality: float | None
    rejected: tuple[tuple[str, str], ...]
    served: str | None  # first, fallback, escalated
    text: str | None = None  # as stored (the decision_reason column)
    usage: Usage | None = None

    @classmethod
    def parse(cls, text: str | None, usage: Usage) -> Reason:
        if not text:
            return cls(usage.requests, None, None, None, None, None, (), None, text, usage)
        by, strategy, objective, relaxed, min_q, rejected, served = orjson.loads(text)
        pairs = tuple((str(m), str(r)) for m, r in rejected)
        return cls(usage.requests, by, strategy, objective, relaxed, min_q, pairs, served, text,
                   usage)  # fmt: skip

    @property
    def chosen(self) -> bool:
        """Served by the planner's first choice (or by a log with no decision): what routing
        chose, as opposed to a fallback after a failure or a cascade's escalation."""
        return self.served in ("first", None)

    def describe(self) -> str:
        if self.strategy is None:
            return "no routing decision recorded"
        text = f"{self.strategy}/{self.objective}"
        if self.selected_by:
            text = f"{text}, route by {self.selected_by}"
        if self.rejected:
            text += "; rejected " + ", ".join(f"{m} ({r})" for m, r in self.rejected)
        if self.relaxed:
            text += f"; relaxed: {self.relaxed}"
        if self.served and self.served != "first":
            text += f"; {self.served}"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "selected_by": self.selected_by,
            "strategy": self.strategy,
            "objective": self.objective,
            "relaxed": self.relaxed,
            "min_quality": self.min_quality,
            "rejected": [list(p) for p in self.rejected],
            "served": self.served,
            "text": self.describe(),
        }


@dataclass(slots=True)
class Serving:
    """A task's requests on one route answered (or not: model None) by one model."""

    route: str | None
    model: str | None
    usage: Usage
    reasons: list[Reason] = field(default_factory=list)
    quality: Evidence | None = None

    def to_dict(self) -> dict[str, Any]:
        u = self.usage
        return {
            "route": self.route,
            "model": self.model,
            "requests": u.requests,
            "ok": u.ok,
            "spend_usd": u.spend_usd,
            "tokens": {"input": u.input_tokens, "output": u.output_tokens,
                       "cached_input": u.cached_input_tokens,
                       "cache_write": u.cache_write_tokens},
            "why": [r.to_dict() for r in sorted(self.reasons, key=lambda r: -r.requests)],
            "quality": None if self.quality is None else self.quality.to_dict(),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Candidate:
    """A model the task could be served by, what the task's usage would cost at its prices
    (per request), and what the outcomes say about it."""

    model: str
    cost_per_request: float
    evidence: Evidence

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "cost_per_request_usd": self.cost_per_request,
            **self.evidence.to_dict(),
        }


@dataclass(slots=True)
class TaskFinding:
    key: str
    labelled: bool
    requests: int
    share: float
    spend_usd: float
    route: str | None  # the route that served most of it
    serving: list[Serving]
    examples: list[str]
    threshold: float | None
    threshold_from: str | None  # policy, decisions, option
    candidates: list[Candidate]
    status: Status
    cheapest: Candidate | None = None  # the cheapest model that meets the threshold
    over_requests: int = 0
    over_spend_usd: float = 0.0
    recoverable_usd: float = 0.0  # in the audited window, from re-pricing
    measure: list[str] = field(default_factory=list)  # what would settle missing evidence
    replay: dict[str, Any] | None = None
    template: str | None = None  # an unlabelled task's prompt template, values masked

    @property
    def name(self) -> str:
        """The label, or the start of an unlabelled task's user message template."""
        if self.labelled or not self.template:
            return self.key
        user = self.template.rpartition("user: ")[2] or self.template
        return f"{user[:40]}{'…' if len(user) > 40 else ''} ({self.key[:12]})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.key,
            "labelled": self.labelled,
            "template": self.template,
            "requests": self.requests,
            "share": self.share,
            "spend_usd": self.spend_usd,
            "route": self.route,
            "serving": [s.to_dict() for s in self.serving],
            "examples": self.examples,
            "threshold": self.threshold,
            "threshold_from": self.threshold_from,
            "status": self.status,
            "cheapest_qualified": None if self.cheapest is None else self.cheapest.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
            "over_provisioned_requests": self.over_requests,
            "over_provisioned_spend_usd": self.over_spend_usd,
            "recoverable_usd": self.recoverable_usd,
            "measure": self.measure,
            "replay": self.replay,
        }


@dataclass(slots=True)
class PolicyChange:
    snippet: str  # YAML: the parts of the policy that change
    notes: list[str]
    check: dict[str, Any]  # the replay of sampled records under the changed policy

    def to_dict(self) -> dict[str, Any]:
        return {"yaml": self.snippet, "notes": self.notes, "replay": self.check}


@dataclass(slots=True)
class AuditReport:
    source: str  # the store (or imported file) audited
    since: float
    totals: Totals
    tasks: list[TaskFinding]
    savings: Savings | None
    change: PolicyChange | None
    policy: str | None  # the policy file in force, if given
    notes: list[str] = field(default_factory=list)
    cache: CacheSavings | None = None  # what the response cache saved

    @property
    def over_requests(self) -> int:
        return sum(t.over_requests for t in self.tasks)

    @property
    def over_share(self) -> float:
        return self.over_requests / self.totals.requests if self.totals.requests else 0.0

    def headline(self) -> str:
        share = f"{self.over_share:.0%} of volume goes to more capable models than required"
        s = self.savings
        if s is None or not self.over_requests:
            return f"{share}; nothing recoverable found on the evidence"
        from modelroute.pricing import usd

        return (
            f"{share}; {usd(s.monthly_usd)}/month recoverable ({usd(s.low_usd)} to "
            f"{usd(s.high_usd)}, 95% interval over {s.buckets} "
            f"{'days' if s.bucket_s == 86_400.0 else 'hours'})"
        )

    def to_dict(self) -> dict[str, Any]:
        t = self.totals
        return {
            "headline": self.headline(),
            "source": self.source,
            "policy": self.policy,
            "since": self.since,
            "totals": {"requests": t.requests, "spend_usd": t.spend_usd,
                       "first_at": t.first_at, "last_at": t.last_at},
            "over_provisioned": {"requests": self.over_requests, "share": self.over_share},
            "savings": None if self.savings is None else self.savings.to_dict(),
            "tasks": [task.to_dict() for task in self.tasks],
            "policy_change": None if self.change is None else self.change.to_dict(),
            "notes": self.notes,
            "cache_savings": None if self.cache is None else self.cache.to_dict(),
        }  # fmt: skip
