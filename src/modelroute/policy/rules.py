"""Compiled rules read straight off the schema: no cross-checks, no problems to report."""

from __future__ import annotations

from modelroute.policy import compiled as c
from modelroute.policy.affinity_spec import AffinityMode, AffinitySpec
from modelroute.policy.schema import (
    ModelRateLimit,
    RateLimit,
    Retries,
    RouteSpec,
    Timeouts,
    WhenStateDown,
)


def retry_policy(retries: Retries) -> c.RetryPolicy:
    return c.RetryPolicy(
        retries.max_attempts,
        retries.backoff_ms,
        retries.max_backoff_ms,
        frozenset(x.value for x in retries.on),
    )


def timeout_policy(timeouts: Timeouts) -> c.TimeoutPolicy:
    return c.TimeoutPolicy(timeouts.attempt_ms, timeouts.total_ms)


def rate_rule(spec: RateLimit | ModelRateLimit | None) -> c.RateRule | None:
    if spec is None:
        return None
    return c.RateRule(
        spec.requests_per_minute,
        spec.tokens_per_minute,
        spec.per.value,
        spec.when_state_down is WhenStateDown.OPEN,
    )


def budget_rule(spec: RouteSpec) -> c.BudgetRule | None:
    b = spec.budget
    if b is None:
        return None
    open_ = b.when_state_down is WhenStateDown.OPEN
    return c.BudgetRule(b.usd, b.period.value, b.per.value, spec.on_budget.value, open_)


def affinity_rule(spec: RouteSpec) -> c.AffinityRule | None:
    a = spec.affinity
    if a is None or a == AffinityMode.NONE:
        return None
    if isinstance(a, AffinityMode):
        a = AffinitySpec(mode=a)
    if a.mode == AffinityMode.NONE:
        return None
    return c.AffinityRule(a.mode.value, a.margin, a.ttl, a.max_sessions)
