"""The request's terms for one route: what the checks compare against. Per-request limits
may only tighten the route's (a looser one is noted, and the route's applies)."""

from __future__ import annotations

from modelroute.planner.constraints import Terms
from modelroute.planner.context import Limits, RequestContext
from modelroute.planner.stats import StatsSnapshot
from modelroute.policy.compiled import Route


def request_terms(
    route: Route, ctx: RequestContext, stats: StatsSnapshot
) -> tuple[Terms, list[str]]:
    """The terms of ``ctx`` on ``route``, and the notes the planner adds to its decision."""
    notes: list[str] = list(ctx.notes)
    lim = ctx.limits
    if lim.max_cost_usd is not None or lim.max_latency_ms is not None or lim.min_quality:
        notes += _looser_notes(route, lim)
    terms = Terms(
        prompt_tokens=ctx.prompt_tokens,
        output_tokens=ctx.max_output_tokens or route.output_tokens,
        explicit_max_tokens=ctx.max_output_tokens,
        needs=_needs(ctx),
        open_circuits=stats.open_circuits,
        max_cost_usd=_tighter_max(route.max_cost_usd, lim.max_cost_usd),
        max_latency_ms=_tighter_max(route.max_latency_ms, lim.max_latency_ms),
        min_quality=_tighter_min(route.min_quality, lim.min_quality),
        min_quality_samples=route.min_quality_samples,
        quality_compare=route.quality_compare,
    )
    return terms, notes


def _tighter_max(route: float | None, request: float | None) -> float | None:
    if request is None:
        return route
    return request if route is None else min(route, request)


def _tighter_min(route: float | None, request: float | None) -> float | None:
    if request is None:
        return route
    return request if route is None else max(route, request)


def _needs(ctx: RequestContext) -> frozenset[str]:
    needs = []
    if ctx.has_tools:
        needs.append("tools")
    if ctx.has_images:
        needs.append("vision")
    if ctx.needs_json:
        needs.append("json_mode")
    if ctx.needs_logprobs:
        needs.append("logprobs")
    if ctx.needs_responses:
        needs.append("responses")
    return frozenset(needs)


def _looser_notes(route: Route, lim: Limits) -> list[str]:
    notes = []
    for field, route_value, request_value, looser in (
        ("max_cost_usd", route.max_cost_usd, lim.max_cost_usd, _gt),
        ("max_latency_ms", route.max_latency_ms, lim.max_latency_ms, _gt),
        ("min_quality", route.min_quality, lim.min_quality, _lt),
    ):
        if request_value is None or route_value is None:
            continue
        if looser(request_value, route_value):
            notes.append(
                f"request {field}={request_value} is looser than the route's "
                f"{route_value}; the route's limit applies"
            )
    return notes


def _gt(a: float, b: float) -> bool:
    return a > b


def _lt(a: float, b: float) -> bool:
    return a < b
