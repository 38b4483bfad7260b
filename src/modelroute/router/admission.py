"""A request's budgets and rate limits, taken before it runs (``state/admission.py``)."""

from __future__ import annotations

from modelroute.engine import route_of
from modelroute.identity import ClientIdentity
from modelroute.planner import Decision, plan
from modelroute.policy import Policy
from modelroute.recording import RecordBuilder
from modelroute.records.planner_input import PlannerInput
from modelroute.state.admission import (
    Account,
    Admission,
    Shortfall,
    has_limits,
    model_limited,
    reserve_usd,
)


def limited(policy: Policy, decision: Decision, identity: ClientIdentity | None) -> bool:
    """Does the request count against a route's, its key's or its model's limits?"""
    if has_limits(route_of(policy, decision)) or model_limited(policy.models, decision):
        return True
    return identity is not None and (identity.budget is not None or not identity.limits.unlimited)


async def admit(
    limits: Admission, builder: RecordBuilder, decision: Decision, identity: ClientIdentity | None
) -> Decision:
    """The budgets and rate limits of the route, the caller's key and the first model,
    taken together (``state/admission.py``: one Redis script); a budget too short for
    the decision refuses it (429) or, with ``on_budget: degrade``, plans again with what
    is left as the cost ceiling: only cheaper models that fit it remain, and the
    decision's notes say so. Raises ``LimitError``."""
    route = route_of(builder.policy, decision)
    account = Account.of(builder.record.client_key_id, identity)
    request_id = builder.record.request_id
    models = builder.policy.models
    model = model_limited(models, decision)
    short = await limits.admit(route, account, decision, request_id, model)
    if short is not None:
        if route.budget is not None and route.budget.on_budget == "degrade":
            decision = _degrade(limits, builder, decision, short)
            model = model_limited(models, decision)
            short = await limits.admit(route, account, decision, request_id, model)
        if short is not None:
            raise limits.refuse_budget(route, short)
    return decision


def _degrade(
    limits: Admission, builder: RecordBuilder, decision: Decision, short: Shortfall
) -> Decision:
    planned = builder.record.planner_input
    assert planned is not None
    ctx, stats = planned.context, planned.snapshot
    left = max(0.0, short.left_usd)
    ceiling = left if ctx.limits.max_cost_usd is None else min(left, ctx.limits.max_cost_usd)
    note = (
        f"on_budget degrade: the route's budget has ${left:.6f} left, under this request's "
        f"estimate for {decision.chosen} (${reserve_usd(decision):.6f}); planned with it "
        "as the cost ceiling"
    )
    ctx = ctx._replace(limits=ctx.limits._replace(max_cost_usd=ceiling))
    ctx = ctx._replace(notes=(*ctx.notes, note))
    builder.record.planner_input = PlannerInput(ctx, stats)
    # A learned route keeps the scores it was planned with (replay reads them the same way).
    scores = None if decision.learned is None else dict(decision.learned.scores)
    degraded = plan(ctx, builder.policy, stats, scores)
    builder.decided(degraded)
    if not degraded.tiers:
        raise limits.refuse_budget(route_of(builder.policy, decision), short)
    return degraded
