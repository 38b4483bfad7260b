"""The Routes page's values: the policy's view of a route, its model mix, measured quality
and rejection counts, from rollup figures and outcome aggregates."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from modelroute.dashboard.rollup_reads import Figures
from modelroute.dashboard.views import (
    ModelMix,
    PolicyCandidate,
    QualityFigure,
    RejectionCount,
    RoutePolicy,
    RouteView,
)
from modelroute.outcomes.aggregate import Aggregate
from modelroute.policy import Policy

DEFAULT_MIN_SAMPLES = 30  # without a policy: the policy schema's default


def route_policy(policy: Policy | None, route: str | None) -> RoutePolicy | None:
    r = None if policy is None or route is None else policy.routes.get(route)
    if r is None:
        return None
    candidates = tuple(
        PolicyCandidate(
            model=e.model.name,
            provider=e.model.provider,
            tier=e.tier,
            fallback=e.fallback,
            prior_quality=e.prior,
            input_usd_per_mtok=e.model.prices.input,
            output_usd_per_mtok=e.model.prices.output,
        )
        for e in r.entries
    )
    return RoutePolicy(
        strategy=r.strategy,
        objective=r.objective,
        max_latency_ms=r.max_latency_ms,
        max_cost_usd=r.max_cost_usd,
        min_quality=r.min_quality,
        on_infeasible=r.on_infeasible,
        candidates=candidates,
        aliases=r.aliases,
    )


def _mix(models: Mapping[str | None, Figures], total: int) -> tuple[ModelMix, ...]:
    out = []
    for model, f in models.items():
        p = f.point(0.0)
        out.append(
            ModelMix(
                model=model,
                requests=p.requests,
                share=p.requests / total if total else 0.0,
                errors=p.errors,
                fallbacks=p.fallbacks,
                spend_usd=p.spend_usd,
                cost_per_request=p.spend_usd / p.requests if p.requests else None,
                p50_latency_ms=p.p50_latency_ms,
                p95_latency_ms=p.p95_latency_ms,
            )
        )
    out.sort(key=lambda m: (-m.requests, m.model or ""))
    return tuple(out)


def _quality(aggregates: Iterable[Aggregate], least: int) -> tuple[QualityFigure, ...]:
    return tuple(
        QualityFigure(
            model=a.model,
            version=a.version,
            current=a.current,
            mean=a.interval.mean,
            low=a.interval.low,
            high=a.interval.high,
            n=a.n,
            confidence=a.interval.confidence,
            method=a.interval.method,
            sources=a.sources,
            enough=a.n >= least,
            last_at=a.last_at,
        )
        for a in aggregates
    )


def route_view(
    route: str | None,
    models: Mapping[str | None, Figures],
    rejected: Mapping[tuple[str, str], int],
    aggregates: Iterable[Aggregate],
    policy: Policy | None,
) -> RouteView:
    total = Figures()
    for f in models.values():
        total.add(f.values)
    p = total.point(0.0)
    rp = None if policy is None or route is None else policy.routes.get(route)
    least = rp.min_quality_samples if rp is not None else DEFAULT_MIN_SAMPLES
    rejections = sorted(
        (
            RejectionCount(candidate, reason, n, n / p.requests if p.requests else 0.0)
            for (candidate, reason), n in rejected.items()
        ),
        key=lambda r: (-r.requests, r.candidate, r.reason),
    )
    return RouteView(
        route=route,
        requests=p.requests,
        errors=p.errors,
        fallbacks=p.fallbacks,
        escalations=p.escalations,
        spend_usd=p.spend_usd,
        cost_per_request=p.spend_usd / p.requests if p.requests else None,
        p50_latency_ms=p.p50_latency_ms,
        p95_latency_ms=p.p95_latency_ms,
        policy=route_policy(policy, route),
        mix=_mix(models, p.requests),
        quality=_quality(aggregates, least),
        rejections=tuple(rejections),
    )
