"""Constraint checks. Each takes a model, its estimate and the request's terms and returns a
``Rejection`` or ``None``. Feasibility checks come first: a model that cannot serve the request
is never offered by ``on_infeasible`` either."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from modelroute.planner.decision import Estimate, Reason, Rejection
from modelroute.policy.compiled import Model


class Terms(NamedTuple):
    """Everything about this request that a check compares against."""

    prompt_tokens: int
    output_tokens: int
    explicit_max_tokens: int | None
    needs: frozenset[str]
    open_circuits: frozenset[str]
    max_cost_usd: float | None
    max_latency_ms: float | None
    min_quality: float | None
    min_quality_samples: int  # rated requests before a measured quality replaces the prior
    # "mean": the estimate's quality must clear min_quality; "lower_bound": the lower bound
    # of its interval must (a figure without an interval, such as a prior, by its value)
    quality_compare: str = "mean"


Check = Callable[[Model, Estimate, Terms], Rejection | None]


def context_fits(model: Model, est: Estimate, t: Terms) -> Rejection | None:
    need = t.prompt_tokens + t.output_tokens
    if need > model.context_window:
        return Rejection(model.name, Reason.CONTEXT_TOO_SMALL, need, model.context_window)
    return None


def output_fits(model: Model, est: Estimate, t: Terms) -> Rejection | None:
    cap = model.max_output_tokens
    if cap is not None and t.explicit_max_tokens is not None and t.explicit_max_tokens > cap:
        return Rejection(model.name, Reason.OUTPUT_TOO_LONG, t.explicit_max_tokens, cap)
    return None


def has_capabilities(model: Model, est: Estimate, t: Terms) -> Rejection | None:
    missing = t.needs - model.capabilities
    if missing:
        return Rejection(model.name, Reason.MISSING_CAPABILITY, detail=", ".join(sorted(missing)))
    return None


def circuit_closed(model: Model, est: Estimate, t: Terms) -> Rejection | None:
    if model.name in t.open_circuits:
        return Rejection(model.name, Reason.CIRCUIT_OPEN)
    return None


def within_cost(model: Model, est: Estimate, t: Terms) -> Rejection | None:
    if t.max_cost_usd is not None and est.cost_usd > t.max_cost_usd:
        return Rejection(model.name, Reason.OVER_COST_CEILING, est.cost_usd, t.max_cost_usd)
    return None


def within_latency(model: Model, est: Estimate, t: Terms) -> Rejection | None:
    if t.max_latency_ms is not None and est.latency_ms > t.max_latency_ms:
        return Rejection(
            model.name,
            Reason.OVER_LATENCY_BUDGET,
            est.latency_ms,
            t.max_latency_ms,
            est.latency_source,
        )
    return None


def compared_quality(est: Estimate, compare: str) -> float | None:
    """The figure min_quality is compared with: the estimate's quality, or under
    ``lower_bound`` the lower bound of its interval when it has one."""
    if compare == "lower_bound" and est.quality_low is not None:
        return est.quality_low
    return est.quality


def meets_quality(model: Model, est: Estimate, t: Terms) -> Rejection | None:
    if t.min_quality is None:
        return None
    if est.quality is None:
        return Rejection(model.name, Reason.QUALITY_UNKNOWN, None, t.min_quality)
    value = compared_quality(est, t.quality_compare)
    assert value is not None
    if value < t.min_quality:
        detail = est.quality_source
        if t.quality_compare == "lower_bound" and est.quality_low is not None:
            detail = f"{detail} lower bound; mean {est.quality:.3f}, n={est.quality_samples}"
        return Rejection(model.name, Reason.BELOW_MIN_QUALITY, value, t.min_quality, detail)
    return None


FEASIBILITY_CHECKS: tuple[Check, ...] = (
    context_fits,
    output_fits,
    has_capabilities,
    circuit_closed,
)
# min_quality is separate: in a cascade it binds the final tier only (see plan.py).
BUDGET_CHECKS: tuple[Check, ...] = (within_cost, within_latency)
