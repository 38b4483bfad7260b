"""The planner's output: ordered steps, every rejection with its reason and numbers.

Values are kept as numbers; messages are rendered only when someone reads them (explain, the
record, an error body), never on the request path. The per-candidate types are named tuples:
immutable and several times cheaper to build than frozen dataclasses, which matters at
microseconds per decision.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, NamedTuple

from modelroute.pricing import usd_pair

if TYPE_CHECKING:
    from modelroute.planner.affinity import Affinity


class Reason(StrEnum):
    # feasibility: the model cannot serve this request at all
    CONTEXT_TOO_SMALL = "context_too_small"
    OUTPUT_TOO_LONG = "output_too_long"
    MISSING_CAPABILITY = "missing_capability"
    CIRCUIT_OPEN = "circuit_open"
    # declared constraints: the route's (or request's) limits
    OVER_COST_CEILING = "over_cost_ceiling"
    OVER_LATENCY_BUDGET = "over_latency_budget"
    BELOW_MIN_QUALITY = "below_min_quality"
    QUALITY_UNKNOWN = "quality_unknown"


FEASIBILITY = frozenset(
    {
        Reason.CONTEXT_TOO_SMALL,
        Reason.OUTPUT_TOO_LONG,
        Reason.MISSING_CAPABILITY,
        Reason.CIRCUIT_OPEN,
    }
)


class Rejection(NamedTuple):
    model: str
    reason: Reason
    value: float | None = None  # what the model would need / cost / take
    limit: float | None = None  # what the route or request allows
    detail: str | None = None  # e.g. the missing capability

    @property
    def message(self) -> str:
        r, v, lim = self.reason, self.value, self.limit
        if r is Reason.OVER_COST_CEILING:
            cost, ceiling = usd_pair(v or 0.0, lim or 0.0)
            return f"over_cost_ceiling: est {cost} > {ceiling}"
        if r is Reason.OVER_LATENCY_BUDGET:
            return f"over_latency_budget: est p95 {v:.0f} ms > {lim:.0f} ms ({self.detail})"
        if r is Reason.BELOW_MIN_QUALITY:
            return f"below_min_quality: {v:.3f} < {lim:.3f} ({self.detail})"
        if r is Reason.QUALITY_UNKNOWN:
            return f"quality_unknown: no measured or prior quality; min_quality is {lim:.3f}"
        if r is Reason.CONTEXT_TOO_SMALL:
            return f"context_too_small: needs {v:.0f} tokens > window {lim:.0f}"
        if r is Reason.OUTPUT_TOO_LONG:
            return f"output_too_long: max_tokens {v:.0f} > model limit {lim:.0f}"
        if r is Reason.MISSING_CAPABILITY:
            return f"missing_capability: {self.detail}"
        return "circuit_open: the model's circuit breaker is open"

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "reason": self.reason.value,
            "value": self.value,
            "limit": self.limit,
            "detail": self.detail,
            "message": self.message,
        }


class Estimate(NamedTuple):
    cost_usd: float
    latency_ms: float  # p95
    latency_source: str  # "measured" | "prior"
    quality: float | None
    quality_source: str  # "measured" | "prior" | "unknown"
    quality_samples: int = 0  # rated requests behind the measured quality, used or not
    # The measured figure's interval, sources and version (None for a prior, and for a
    # measured mean without an interval).
    quality_low: float | None = None
    quality_high: float | None = None
    quality_sources: str | None = None
    quality_version: str | None = None


class Candidate(NamedTuple):
    model: str
    estimate: Estimate
    fallback: bool = False  # came from the route's fallbacks, not its strategy
    # Constraints relaxed by on_infeasible; or circuit_open, for a probe (see ``probe``).
    waived: tuple[Rejection, ...] = ()

    @property
    def probe(self) -> bool:
        """Offered although its circuit is open (the route's ejection cap): the engine sends
        it as the breaker's probe."""
        return any(w.reason is Reason.CIRCUIT_OPEN for w in self.waived)

    def to_dict(self) -> dict[str, Any]:
        est = self.estimate
        return {
            "model": self.model,
            "fallback": self.fallback,
            "cost_usd": est.cost_usd,
            "latency_p95_ms": est.latency_ms,
            "latency_source": est.latency_source,
            "quality": est.quality,
            "quality_source": est.quality_source,
            "quality_samples": est.quality_samples,
            "quality_low": est.quality_low,
            "quality_high": est.quality_high,
            "quality_sources": est.quality_sources,
            "quality_version": est.quality_version,
            "waived": [w.to_dict() for w in self.waived],
        }


class Learned(NamedTuple):
    """What a learned route's router predicted for this request (on every record)."""

    router_hash: str  # sha256 of the router file
    kind: str  # the scorer kind
    threshold: float  # the predicted score the chosen model had to clear
    threshold_source: str  # "calibrated" | "policy"
    scores: tuple[tuple[str, float], ...]  # (model, predicted score), the route's models
    rule: str = "threshold"  # "threshold" | "score_minus_cost"
    lam: float | None = None  # score per USD, under score_minus_cost

    def to_dict(self) -> dict[str, Any]:
        return {
            "router_hash": self.router_hash,
            "kind": self.kind,
            "threshold": self.threshold,
            "threshold_source": self.threshold_source,
            "scores": dict(self.scores),
            "rule": self.rule,
            "lambda": self.lam,
        }


class Decision(NamedTuple):
    """``tiers[0]`` is tried first; inside a tier, later candidates are fallbacks of earlier
    ones; a later tier is an escalation (cascade) taken on low confidence."""

    route: str
    strategy: str
    objective: str
    policy_hash: str
    selected_by: str  # how the route was found: name, alias, task, match, default, model
    tiers: tuple[tuple[Candidate, ...], ...]
    rejections: tuple[Rejection, ...]
    prompt_tokens: int
    output_tokens: int
    max_cost_usd: float | None
    max_latency_ms: float | None
    min_quality: float | None
    relaxed: str | None = None  # the on_infeasible action that produced the steps, if any
    notes: tuple[str, ...] = ()
    learned: Learned | None = None  # a learned route's predicted scores
    affinity: Affinity | None = None  # what session affinity did (``planner/affinity.py``)

    @property
    def feasible(self) -> bool:
        return bool(self.tiers) and self.relaxed is None

    @property
    def order(self) -> tuple[str, ...]:
        return tuple(c.model for tier in self.tiers for c in tier)

    @property
    def chosen(self) -> str | None:
        return self.tiers[0][0].model if self.tiers else None

    @property
    def reason(self) -> str:
        """One short line for a response header."""
        if not self.tiers:
            return f"infeasible: {len(self.rejections)} rejection(s)"
        first = self.tiers[0][0]
        text = f"{self.strategy}/{self.objective}: {first.model}"
        if self.relaxed:
            text += f" (relaxed: {self.relaxed})"
        if self.rejections:
            text += f"; {len({r.model for r in self.rejections})} rejected"
        if self.affinity is not None:
            text += f"; session {self.affinity.action}"
        return text

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "route": self.route,
            "strategy": self.strategy,
            "objective": self.objective,
            "policy_hash": self.policy_hash,
            "selected_by": self.selected_by,
            "feasible": self.feasible,
            "relaxed": self.relaxed,
            "chosen": self.chosen,
            "order": list(self.order),
            "tiers": [[c.to_dict() for c in tier] for tier in self.tiers],
            "rejections": [r.to_dict() for r in self.rejections],
            "prompt_tokens": self.prompt_tokens,
            "output_tokens": self.output_tokens,
            "limits": {
                "max_cost_usd": self.max_cost_usd,
                "max_latency_ms": self.max_latency_ms,
                "min_quality": self.min_quality,
            },
            "notes": list(self.notes),
        }
        if self.learned is not None:
            out["learned"] = self.learned.to_dict()
        if self.affinity is not None:
            out["affinity"] = self.affinity.to_dict()
        return out
