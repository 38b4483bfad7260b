"""The audit as terminal text: the headline, one table row per task, then each task's detail
(why its models served it, the evidence for each candidate, what to measure), and the
policy change with its replayed effect."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from modelroute.analysis.audit_model import AuditReport, TaskFinding
from modelroute.pricing import usd

_STATUS = {
    "over_provisioned": "over-provisioned",
    "right_sized": "right-sized",
    "no_cheaper_candidate": "no cheaper model",
    "not_enough_evidence": "not enough evidence",
    "no_threshold": "no threshold",
    "unpriced": "no prices",
}
_EXAMPLE_CHARS = 160


def _when(ts: float | None) -> str:
    return "-" if ts is None else datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")


def task_name(f: TaskFinding) -> str:
    return f.name


def _served(f: TaskFinding) -> str:
    parts = [
        f"{s.model or '(no answer)'} {s.usage.requests / f.requests:.0%}"
        for s in f.serving
        if s.usage.requests / max(f.requests, 1) >= 0.01 or s is f.serving[0]
    ]
    return ", ".join(parts)


def _cheapest(f: TaskFinding) -> str:
    if f.cheapest is None:
        return "-"
    return f"{f.cheapest.model} {f.cheapest.evidence.describe()}"


def _table(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    out = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    return out


def render_audit(report: AuditReport) -> str:
    t = report.totals
    lines = [
        f"audit of {report.source}: {t.requests:,} requests, {usd(t.spend_usd)} "
        f"({_when(t.first_at)} to {_when(t.last_at)})",
        f"policy: {report.policy or '(none given: thresholds from the recorded decisions)'}",
        "",
        report.headline(),
        *([report.cache.describe()] if report.cache is not None else []),
        "",
    ]
    if not report.tasks:
        return "\n".join([*lines, "no tasks in the window"])
    rows = [
        [str(i), task_name(f), f"{f.requests:,}", f"{f.share:.1%}", usd(f.spend_usd),
         _served(f), _cheapest(f), _STATUS[f.status]]
        for i, f in enumerate(report.tasks, 1)
    ]  # fmt: skip
    headers = ["#", "task", "requests", "share", "spend", "served by", "cheapest qualified",
               "status"]  # fmt: skip
    lines += _table(headers, rows)
    for i, f in enumerate(report.tasks, 1):
        lines += ["", *_detail(i, f)]
    lines += _change(report)
    lines += ["", *report.notes] if report.notes else []
    return "\n".join(lines)


def _detail(i: int, f: TaskFinding) -> list[str]:
    threshold = (
        "no threshold (no min_quality on its route; give one with --min-quality)"
        if f.threshold is None
        else f"threshold {f.threshold:g} (from the {f.threshold_from}): a model meets it when "
        "its 95% interval's lower bound does"
    )
    lines = [f"{i}. {f.key}{'' if f.labelled else ' (unlabelled)'}: {threshold}"]
    if f.template:
        lines.append(f"   template: {f.template.replace(chr(10), ' | ')}")
    for example in f.examples:
        short = example.replace("\n", " | ")
        cut = short[:_EXAMPLE_CHARS] + ("..." if len(short) > _EXAMPLE_CHARS else "")
        lines.append(f"   example: {cut}")
    for s in f.serving:
        quality = "" if s.quality is None else f"; measured {s.quality.describe()}"
        lines.append(
            f"   served by {s.model or '(no answer)'} on route {s.route}: {s.usage.requests:,} "
            f"requests, {usd(s.usage.spend_usd)}{quality}"
        )
        for r in sorted(s.reasons, key=lambda r: -r.requests)[:3]:
            lines.append(f"     why ({r.requests / s.usage.requests:.0%}): {r.describe()}")
    for c in f.candidates:
        lines.append(
            f"   candidate {c.model}: {usd(c.cost_per_request)}/request, "
            f"{c.evidence.verdict.replace('_', ' ')}: {c.evidence.describe()}"
        )
    if f.status == "over_provisioned":
        lines.append(
            f"   over-provisioned: {f.over_requests:,} requests ({f.over_requests / f.requests:.0%}"
            f"), {usd(f.recoverable_usd)} recoverable in the window"
        )
    lines += [f"   {m}".replace("\n", "\n     ").rstrip() for m in f.measure]
    if f.replay is not None:
        lines.append(f"   replayed under the change: {_replayed(f.replay)}")
    return lines


def _replayed(check: dict[str, Any]) -> str:
    shares = ", ".join(f"{m} {v:.0%}" for m, v in check["first_model_share"].items())
    moved = check.get("moved_share")
    text = f"first model {shares} (n={check['replayed']} sampled records)"
    if moved is not None:
        text = f"{moved:.0%} to {check['target']}; " + text
    return text


def _change(report: AuditReport) -> list[str]:
    change = report.change
    if change is None:
        if report.policy is None and report.over_requests:
            return ["", "pass --policy FILE (the policy in force) for the change that captures it"]
        return []
    lines = ["", "policy change that captures it (YAML, the parts that change):"]
    lines += [f"  {line}" for line in change.snippet.rstrip().splitlines()] or ["  (none)"]
    lines += [f"  note: {n}" for n in change.notes]
    return lines
