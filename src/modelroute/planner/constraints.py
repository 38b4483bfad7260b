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


# Read once: an enum member looked up on its class costs about as much as building a tuple,
# and building a named tuple through its own __new__ costs a Python call.
_new = tuple.__new__
_CONTEXT_TOO_SMALL = Reason.CONTEXT_TOO_SMALL
_OUTPUT_TOO_LONG = Reason.OUTPUT_TOO_LONG
_MISSING_CAPABILITY = Reason.MISSING_CAPABILITY
_CIRCUIT_OPEN = Reason.CIRCUIT_OPEN
_OVER_COST_CEILING = Reason.OVER_COST_CEILING
_OVER_LATENCY_BUDGET = Reason.OVER_LATENCY_BUDGET
_BELOW_MIN_QUALITY = Reason.BELOW_MIN_QUALITY
_QUALITY_UNKNOWN = Reason.QUALITY_UNKNOWN


def meets_quality(model: Model, est: Estimate, t: Terms) -> Rejection | None:
    bar = t.min_quality
    if bar is None:
        return None
    quality = est.quality
    if quality is None:
        return _new(Rejection, (model.name, _QUALITY_UNKNOWN, None, bar, None))
    value = compared_quality(est, t.quality_compare)
    assert value is not None
    if value < bar:
        detail = est.quality_source
        if t.quality_compare == "lower_bound" and est.quality_low is not None:
            detail = f"{detail} lower bound; mean {quality:.3f}, n={est.quality_samples}"
        return _new(Rejection, (model.name, _BELOW_MIN_QUALITY, value, bar, detail))
    return None


def prior_below(name: str, quality: float | None, source: str, bar: float) -> Rejection:
    """``meets_quality``'s rejection of a model estimated from its priors alone, whose quality
    does not clear ``bar``: a prior has no interval, so either comparison gives this one."""
    if quality is None:
        return _new(Rejection, (name, _QUALITY_UNKNOWN, None, bar, None))
    return _new(Rejection, (name, _BELOW_MIN_QUALITY, quality, bar, source))


FEASIBILITY_CHECKS: tuple[Check, ...] = (
    context_fits,
    output_fits,
    has_capabilities,
    circuit_closed,
)
# min_quality is separate: in a cascade it binds the final tier only (see plan.py).
BUDGET_CHECKS: tuple[Check, ...] = (within_cost, within_latency)


def unmet(
    model: Model, est: Estimate, t: Terms
) -> tuple[list[Rejection], list[Rejection], Rejection | None]:
    """Every check at once, for a model the planner's fast path turned down: the feasibility
    rejections (in ``FEASIBILITY_CHECKS`` order), the budget ones (``BUDGET_CHECKS`` order) and
    ``meets_quality``'s. The same as calling each check (a property test holds them together),
    in one call instead of seven."""
    name = model.name
    found: list[Rejection] = []
    need, window = t.prompt_tokens + t.output_tokens, model.context_window
    if need > window:
        found.append(_new(Rejection, (name, _CONTEXT_TOO_SMALL, need, window, None)))
    cap, asked = model.max_output_tokens, t.explicit_max_tokens
    if cap is not None and asked is not None and asked > cap:
        found.append(_new(Rejection, (name, _OUTPUT_TOO_LONG, asked, cap, None)))
    if not t.needs <= model.capabilities:
        missing = ", ".join(sorted(t.needs - model.capabilities))
        found.append(_new(Rejection, (name, _MISSING_CAPABILITY, None, None, missing)))
    if name in t.open_circuits:
        found.append(_new(Rejection, (name, _CIRCUIT_OPEN, None, None, None)))
    declared: list[Rejection] = []
    cost, ceiling = est.cost_usd, t.max_cost_usd
    if ceiling is not None and cost > ceiling:
        declared.append(_new(Rejection, (name, _OVER_COST_CEILING, cost, ceiling, None)))
    latency, budget = est.latency_ms, t.max_latency_ms
    if budget is not None and latency > budget:
        over = (name, _OVER_LATENCY_BUDGET, latency, budget, est.latency_source)
        declared.append(_new(Rejection, over))
    bar, quality = t.min_quality, est.quality
    if bar is None or (quality is not None and quality >= bar and t.quality_compare == "mean"):
        return found, declared, None  # what meets_quality finds, without calling it
    return found, declared, meets_quality(model, est, t)


def passes(model: Model, est: Estimate, t: Terms) -> bool:
    """Fast path: every feasibility and budget check at once, with no objects built. The checks
    above stay the definition; a property test holds the two together."""
    return (
        t.prompt_tokens + t.output_tokens <= model.context_window
        and (
            model.max_output_tokens is None
            or t.explicit_max_tokens is None
            or t.explicit_max_tokens <= model.max_output_tokens
        )
        and t.needs <= model.capabilities
        and model.name not in t.open_circuits
        and (t.max_cost_usd is None or est.cost_usd <= t.max_cost_usd)
        and (t.max_latency_ms is None or est.latency_ms <= t.max_latency_ms)
    )


def clears(est: Estimate, min_quality: float, compare: str) -> bool:
    """Does the estimate clear min_quality (``meets_quality`` without building a
    rejection)?"""
    value = compared_quality(est, compare)
    return value is not None and value >= min_quality
