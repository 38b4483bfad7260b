"""Plain-text views of a policy and a decision, for people reading a terminal."""

from __future__ import annotations

from modelroute.outcomes.quality_text import describe_quality
from modelroute.planner.decision import Candidate, Decision, Estimate
from modelroute.policy.compiled import Policy, Route
from modelroute.pricing import usd


def _limits(route: Route) -> str:
    parts = []
    if route.max_latency_ms is not None:
        parts.append(f"latency<={route.max_latency_ms:.0f}ms")
    if route.max_cost_usd is not None:
        parts.append(f"cost<={usd(route.max_cost_usd)}")
    if route.min_quality is not None:
        parts.append(f"quality>={route.min_quality:.2f}")
    return ", ".join(parts) or "no limits"


def render_check(policy: Policy) -> str:
    version = f" version {policy.version}" if policy.version else ""
    lines = [
        f"{policy.source}: ok{version} (policy {policy.short_hash})",
        f"  models ({len(policy.models)}):",
    ]
    for m in policy.models.values():
        caps = ",".join(sorted(m.capabilities)) or "-"
        key = f" key=env:{m.api_key_env}" if m.api_key_env else ""
        lines.append(
            f"    {m.name:<20} {m.provider}:{m.model_id}  in {usd(m.prices.input)}/out "
            f"{usd(m.prices.output)} per Mtok ({m.prices.source})  ctx {m.context_window}  "
            f"[{caps}]{key}"
        )
    lines.append(f"  routes ({len(policy.routes)}):")
    for r in policy.routes.values():
        aliases = f" (aliases: {', '.join(r.aliases)})" if r.aliases else ""
        tiers = " -> ".join("|".join(t) for t in r.tiers)
        fallbacks = f" fallbacks: {', '.join(r.fallbacks)}" if r.fallbacks else ""
        lines.append(
            f"    {r.name}{aliases}: {r.strategy}/{r.objective} [{tiers}]{fallbacks}; "
            f"{_limits(r)}; on_infeasible={r.on_infeasible}"
        )
        if r.learned is not None:
            rule = r.learned
            target = "" if rule.target is None else f" for {rule.target:.0%} of the best quality"
            if rule.rule == "score_minus_cost" and rule.lam is not None:
                why = target if rule.lambda_source == "calibrated" else ""
                how = f"score - {rule.lam:g} x cost (lambda {rule.lambda_source}{why})"
            else:
                how = f"threshold {rule.threshold:.3f} ({rule.threshold_source}{target})"
            lines.append(
                f"      router: {rule.path} ({rule.kind}, sha256 {rule.file_hash[:12]}); {how}"
            )
        if r.shadow is not None:
            s = r.shadow
            lines.append(
                f"      shadow: {', '.join(s.models)} on {s.sample * 100:g}% of requests, by "
                f"{s.grader}, at most {usd(s.max_usd_per_day)} a day"
            )
    if policy.default_route:
        lines.append(f"  default route: {policy.default_route}")
    return "\n".join(lines)


def _quality(e: Estimate, needed: int | None) -> str:
    """The quality estimate, where it came from, and the rated requests behind a measurement."""
    value = "?" if e.quality is None else f"{e.quality:.3f}"
    low, high = e.quality_low, e.quality_high
    if e.quality_source == "measured" and low is not None and high is not None:
        # 0.87 ±0.03 (n=412, eval, small-2024-07-18)
        spread = (high - low) / 2
        text = describe_quality(
            e.quality, spread, e.quality_samples, e.quality_sources, e.quality_version
        )
        return f"quality {text}"
    if e.quality_source == "measured":
        return f"quality {value} (measured: {e.quality_samples} rated requests)"
    if e.quality_samples and needed is not None:
        return (
            f"quality {value} ({e.quality_source}: {e.quality_samples} rated requests "
            f"of {needed} needed)"
        )
    return f"quality {value} ({e.quality_source})"


def _candidate(c: Candidate, needed: int | None) -> str:
    e = c.estimate
    tag = " (fallback)" if c.fallback else ""
    text = (
        f"{c.model}{tag}: est {usd(e.cost_usd)}, p95 {e.latency_ms:.0f} ms "
        f"({e.latency_source}), {_quality(e, needed)}"
    )
    for waived in c.waived:
        why = "kept as a probe" if c.probe else "waived by on_infeasible"
        text += f"\n        {why}: {waived.message}"
    return text


def render_decision(decision: Decision, policy: Policy) -> str:
    d = decision
    lines = [
        f"route: {d.route} (selected by {d.selected_by}; {d.strategy}, objective {d.objective})",
        f"policy: {policy.source} {policy.short_hash}"
        + (f" version {policy.version}" if policy.version else ""),
        f"tokens: prompt ~{d.prompt_tokens}, output {d.output_tokens}",
    ]
    limits = [f"max_cost_usd={usd(d.max_cost_usd)}"] if d.max_cost_usd is not None else []
    limits += [
        f"{k}={v:g}"
        for k, v in (("max_latency_ms", d.max_latency_ms), ("min_quality", d.min_quality))
        if v is not None
    ]
    lines.append("limits: " + (", ".join(limits) or "none"))
    route = policy.routes.get(d.route) or policy.direct.get(d.route)
    needed = None if route is None else route.min_quality_samples
    if d.min_quality is not None and route is not None and route.quality_compare != "mean":
        lines[-1] += " (the interval's lower bound must clear min_quality)"
    if d.tiers:
        lines.append(f"chosen: {d.chosen}" + (f" (relaxed: {d.relaxed})" if d.relaxed else ""))
        lines.append("order:")
        step = 1
        for index, tier in enumerate(d.tiers):
            if len(d.tiers) > 1:
                lines.append(f"  tier {index + 1}" + (" (escalation)" if index else ""))
            for c in tier:
                lines.append(f"    {step}. {_candidate(c, needed)}")
                step += 1
    else:
        action = route.on_infeasible if route is not None else "reject"
        lines.append(f"chosen: none: no model satisfies the constraints (on_infeasible={action})")
    if d.rejections:
        lines.append("rejected:")
        for r in d.rejections:
            lines.append(f"  - {r.model}: {r.message}")
    if d.learned is not None:
        lines += _learned_lines(d)
    if d.affinity is not None:
        lines.append(f"session affinity ({d.affinity.mode}): {d.affinity.message}")
    for note in d.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines)


def _learned_lines(d: Decision) -> list[str]:
    """A learned route's predicted score per model and how the rule read them."""
    learned = d.learned
    assert learned is not None
    head = f"predicted scores (router {learned.kind} {learned.router_hash[:12]}, "
    if learned.rule == "score_minus_cost" and learned.lam is not None:
        lam = learned.lam
        costs = {c.model: c.estimate.cost_usd for tier in d.tiers for c in tier}
        lines = [
            head + f"rule score_minus_cost, lambda {lam:g} per USD; the highest predicted "
            "score - lambda x estimated cost goes first):"
        ]
        for model, score in sorted(learned.scores, key=lambda item: -item[1]):
            cost = costs.get(model)
            if cost is None:
                lines.append(f"  {model}: {score:.3f} (rejected)")
            else:
                utility = score - lam * cost
                lines.append(f"  {model}: {score:.3f} - {lam:g} x {usd(cost)} = {utility:.4f}")
        return lines
    lines = [
        head + f"threshold {learned.threshold:.3f} {learned.threshold_source}; the cheapest "
        "model at or above it goes first):"
    ]
    for model, score in sorted(learned.scores, key=lambda item: -item[1]):
        mark = "clears" if score >= learned.threshold else "below"
        lines.append(f"  {model}: {score:.3f} ({mark})")
    return lines
