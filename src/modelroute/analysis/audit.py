"""The audit of recorded traffic: which tasks take the volume, which models serve them and why,
and which are served by a more capable (costlier) model than their measured quality needs.

For each of the top tasks by requests (``audit_sql``): its share and spend, the models that
served it with the decision behind each (route, strategy, the rule or rejection that decided,
``audit_model.Reason``), two example prompts, the measured quality of the models that could
serve it (``audit_quality``), and the cheapest model whose quality meets the task's threshold:
the ``min_quality`` of its route in the policy in force (else the one its decisions applied,
else ``--min-quality``). Requests served by a costlier model than that one are
over-provisioned; re-priced at the cheaper model they give the recoverable spend and its
interval (``audit_savings``), and the policy change that would capture it is checked by
replaying sampled records under it (``audit_change``). Where the evidence is too thin the
audit says so and names the measurement that would settle it (``audit_measure``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from modelroute.analysis import audit_sql
from modelroute.analysis.audit_cache import cache_savings
from modelroute.analysis.audit_change import propose
from modelroute.analysis.audit_measure import advice
from modelroute.analysis.audit_model import (
    AuditReport,
    Candidate,
    Reason,
    Serving,
    TaskFinding,
)
from modelroute.analysis.audit_quality import Quality
from modelroute.analysis.audit_savings import bucket_seconds, repriced, savings
from modelroute.analysis.audit_sql import Group, Totals, Usage, Volume
from modelroute.policy import Policy
from modelroute.pricing import PriceTable
from modelroute.records.stores.base import Store
from modelroute.records.task_key import template

DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class AuditOptions:
    since: float
    now: float
    top: int = 20
    policy: Policy | None = None
    policy_data: Mapping[str, Any] | None = None  # the policy file as YAML data
    policy_path: str | None = None
    store_url: str = "STORE"
    min_quality: float | None = None  # for routes without one
    min_samples: int = 30
    prices: Callable[[str], PriceTable | None] | None = None  # models outside the policy
    candidates: tuple[str, ...] = ()  # more models to consider (imports)
    sample_per_group: int = 20  # records read per (task, route, model, reason) group


class _Context:
    def __init__(self, options: AuditOptions, totals: Totals, quality: Quality) -> None:
        self.options = options
        self.totals = totals
        self.quality = quality
        first = totals.first_at if totals.first_at is not None else options.since
        self.days = max((options.now - max(options.since, first)) / DAY_S, 1 / 24)

    def min_samples(self, route: str | None) -> int:
        """Outcomes a verdict needs: the route's ``min_samples`` in the policy, if given."""
        policy = self.options.policy
        if policy is not None and route is not None and route in policy.routes:
            return policy.routes[route].min_quality_samples
        return self.options.min_samples

    def prices(self, model: str) -> PriceTable | None:
        policy = self.options.policy
        if policy is not None and model in policy.models:
            return policy.models[model].prices
        found = self.options.prices
        return None if found is None else found(model)


async def audit(store: Store, options: AuditOptions, source: str) -> AuditReport:
    totals, top = await audit_sql.volumes(store, options.since, options.top)
    keys = [v.task_key for v in top]
    groups = await audit_sql.groups(store, keys, options.since)
    task_rows = await audit_sql.task_scores(store, keys)
    route_rows = await store.outcome_scores("route")
    ctx = _Context(options, totals, Quality(task_rows, route_rows, options.min_samples))
    records = await _samples(store, groups, options)
    findings = [
        _finding(ctx, v, [g for g in groups if g.task_key == v.task_key], records) for v in top
    ]
    report = AuditReport(source, options.since, totals, findings, None, None, options.policy_path)
    await _savings(store, ctx, report)
    if options.policy is not None and options.policy_data is not None:
        data = options.policy_data
        report.change = propose(options.policy, data, findings, ctx.quality, records)
        _attach_replays(report)
    return report


# --- one task ------------------------------------------------------------------------------


def _serving(groups: list[Group]) -> list[Serving]:
    """The task's groups per (route, model), each with its decision reasons."""
    by: dict[tuple[str | None, str | None], list[Group]] = {}
    for g in groups:
        by.setdefault((g.route, g.model), []).append(g)
    out = []
    for (route, model), members in by.items():
        usage = _sum(g.usage for g in members)
        reasons = [Reason.parse(g.reason, g.usage) for g in members]
        out.append(Serving(route, model, usage, reasons))
    out.sort(key=lambda s: -s.usage.requests)
    return out


def _sum(usages: Any) -> Usage:
    items = list(usages)
    return Usage(*(sum(getattr(u, f) for u in items) for f in Usage.__dataclass_fields__))


def _threshold(ctx: _Context, route: str | None, serving: list[Serving]) -> tuple[Any, Any]:
    policy = ctx.options.policy
    if policy is not None and route is not None and route in policy.routes:
        found = policy.routes[route].min_quality
        if found is not None:
            return found, "policy"
    applied: Counter[float] = Counter()
    for s in serving:
        for r in s.reasons:
            if r.min_quality is not None:
                applied[float(r.min_quality)] += r.requests
    if applied:
        return applied.most_common(1)[0][0], "decisions"
    if ctx.options.min_quality is not None:
        return ctx.options.min_quality, "option"
    return None, None


def _candidate_models(
    ctx: _Context, key: str, route: str | None, serving: list[Serving]
) -> set[str]:
    models = {s.model for s in serving if s.model is not None}
    policy = ctx.options.policy
    if policy is not None and route is not None and route in policy.routes:
        models |= {e.model.name for e in policy.routes[route].entries}
    models |= set(ctx.options.candidates) | ctx.quality.models(key, route)
    return {m for m in models if ctx.prices(m) is not None}


def _finding(
    ctx: _Context,
    volume: Volume,
    groups: list[Group],
    records: Mapping[Group, list[dict[str, Any]]],
) -> TaskFinding:
    serving = _serving(groups)
    answered = [s for s in serving if s.model is not None]
    route = answered[0].route if answered else (serving[0].route if serving else None)
    threshold, source = _threshold(ctx, route, serving)
    total = ctx.totals.requests or 1
    finding = TaskFinding(
        key=volume.task_key, labelled=not volume.task_key.startswith("tpl:"),
        requests=volume.requests, share=volume.requests / total, spend_usd=volume.spend_usd,
        route=route, serving=serving, examples=_examples(groups, records),
        threshold=threshold, threshold_from=source, candidates=[], status="no_threshold",
    )  # fmt: skip
    if not finding.labelled and finding.examples:
        finding.template = template(finding.examples[0])
    if threshold is None:
        return finding
    usage = _sum(s.usage for s in answered) if answered else None
    if (
        usage is None
        or usage.requests == 0
        or any(ctx.prices(s.model or "") is None for s in answered)
    ):
        finding.status = "unpriced"
        return finding
    least = ctx.min_samples(route)
    for s in answered:
        s.quality = ctx.quality.evidence(volume.task_key, route, str(s.model), threshold, least)
    candidates = []
    for m in _candidate_models(ctx, volume.task_key, route, serving):
        prices = ctx.prices(m)
        assert prices is not None  # candidates are priced models
        evidence = ctx.quality.evidence(volume.task_key, route, m, threshold, least)
        candidates.append(Candidate(m, repriced(usage, prices) / usage.requests, evidence))
    finding.candidates = sorted(candidates, key=lambda c: (c.cost_per_request, c.model))
    _verdict(ctx, finding, answered)
    return finding


def _verdict(ctx: _Context, finding: TaskFinding, answered: list[Serving]) -> None:
    """Status, cheapest qualified model, over-provisioned requests, and what to measure."""
    cost = {c.model: c.cost_per_request for c in finding.candidates}
    finding.cheapest = next((c for c in finding.candidates if c.evidence.verdict == "meets"), None)
    # what most of the task is served by (answered is sorted by requests): the model a cheaper
    # one would replace; a costlier fallback's share counts as over-provisioned, below
    main = cost[str(answered[0].model)]
    floor = finding.cheapest.cost_per_request if finding.cheapest else main
    unsure = [
        c for c in finding.candidates
        if c.evidence.verdict == "not_enough" and c.cost_per_request < floor
    ]  # fmt: skip
    cheapest = finding.cheapest
    bar = float("inf") if cheapest is None else cheapest.cost_per_request
    # requests routing chose a costlier model for (fallbacks and escalations are the price
    # of failures and doubts, not of a choice a policy change would undo)
    over = [r for s in answered if cost[str(s.model)] > bar for r in s.reasons if r.chosen]
    if over and cheapest is not None:
        prices = ctx.prices(cheapest.model)
        assert prices is not None
        usages = [r.usage for r in over if r.usage is not None]
        finding.status = "over_provisioned"
        finding.over_requests = sum(u.requests for u in usages)
        finding.over_spend_usd = sum(u.spend_usd for u in usages)
        finding.recoverable_usd = sum(u.spend_usd - repriced(u, prices) for u in usages)
    elif unsure:
        finding.status = "not_enough_evidence"
    elif all(c.cost_per_request >= main for c in finding.candidates):
        finding.status = "no_cheaper_candidate"
    else:
        finding.status = "right_sized"
    per_day = finding.requests / ctx.days
    o = ctx.options
    finding.measure = advice(finding.route, unsure, per_day, o.policy_path, o.store_url)


def _examples(groups: list[Group], records: Mapping[Group, list[dict[str, Any]]]) -> list[str]:
    """Two prompts of the task, different ones when it has them."""
    seen: list[str] = []
    for g in sorted(groups, key=lambda g: -g.usage.requests):
        for record in records.get(g, ()):
            prompt = record.get("prompt")
            if prompt and prompt not in seen:
                seen.append(prompt)
            if len(seen) == 2:
                return seen
    return seen


# --- reading samples, savings, replay -------------------------------------------------------


async def _samples(
    store: Store, groups: Sequence[Group], options: AuditOptions
) -> dict[Group, list[dict[str, Any]]]:
    """Up to ``sample_per_group`` whole records of each group, read in one go per task."""
    ids = {
        g: await audit_sql.sample_ids(store, g, options.since, options.sample_per_group)
        for g in groups
    }
    by_task: dict[str, list[str]] = {}
    for g, found in ids.items():
        by_task.setdefault(g.task_key, []).extend(found)
    records: dict[str, dict[str, Any]] = {}
    for wanted in by_task.values():
        records.update((r["request_id"], r) for r in await store.get_many(wanted))
    return {g: [records[i] for i in found if i in records] for g, found in ids.items()}


async def _savings(store: Store, ctx: _Context, report: AuditReport) -> None:
    """(task, model, decision reason) groups chosen over a cheaper qualified model, priced at
    that model, bucket by bucket."""
    moves: dict[tuple[str, str, str | None], PriceTable] = {}
    for f in report.tasks:
        if f.status != "over_provisioned" or f.cheapest is None:
            continue
        prices = ctx.prices(f.cheapest.model)
        cost = {c.model: c.cost_per_request for c in f.candidates}
        for s in f.serving:
            if prices is None or s.model is None:
                continue
            if cost.get(s.model, 0.0) > f.cheapest.cost_per_request:
                moves.update(((f.key, s.model, r.text), prices) for r in s.reasons if r.chosen)
    totals = ctx.totals
    size = bucket_seconds(max(ctx.options.since, totals.first_at or 0.0), ctx.options.now)
    start = max(ctx.options.since, totals.first_at or ctx.options.since)
    first, last = int(start // size), int(ctx.options.now // size)
    keys = sorted({k for k, _, _ in moves})
    found = await audit_sql.buckets(store, keys, ctx.options.since, size)
    report.savings = savings(found, moves, first, last, size)
    report.cache = await cache_savings(store, ctx.options.since, ctx.options.now, start, size)


def _attach_replays(report: AuditReport) -> None:
    if report.change is None:
        return
    per_task = report.change.check.get("tasks", {})
    for f in report.tasks:
        f.replay = per_task.get(f.key)
