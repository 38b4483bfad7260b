"""The audit as one self-contained HTML file: charts drawn here as inline SVG, styles inline, no
script, font, image or link fetched from anywhere, so the report reads the same offline and
can be mailed as it is. Every text taken from the records (prompts, task names) is escaped.

Charts: requests per task by status; spend per task by serving model; measured quality of
each task's candidate models with their 95% intervals against its threshold; the monthly
savings with their interval.
"""

from __future__ import annotations

from datetime import datetime
from html import escape
from typing import Any

from modelroute.analysis.audit_model import AuditReport, TaskFinding
from modelroute.analysis.audit_text import task_name
from modelroute.pricing import usd

_COLORS = {
    "over_provisioned": "#d9534f",
    "right_sized": "#5cb85c",
    "no_cheaper_candidate": "#5cb85c",
    "not_enough_evidence": "#999999",
    "no_threshold": "#bbbbbb",
    "unpriced": "#bbbbbb",
}
_PALETTE = ("#4e79a7", "#f28e2b", "#76b7b2", "#e15759", "#59a14f", "#edc948", "#b07aa1")
_STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:2em} h3{font-size:1em}
.headline{font-size:1.2em;background:#fff4e5;border-left:4px solid #f0ad4e;padding:.6em 1em}
table{border-collapse:collapse;font-size:.9em} td,th{border-bottom:1px solid #ddd;padding:4px 8px;
text-align:left;vertical-align:top} pre{background:#f6f6f6;padding:.6em;overflow-x:auto}
.muted{color:#666} svg text{font-size:11px;font-family:system-ui,sans-serif}
"""
_W = 760  # chart width


def _t(x: Any) -> str:
    return escape(str(x), quote=True)


def _label(f: TaskFinding, width: int = 34) -> str:
    name = task_name(f)
    return name if len(name) <= width else name[: width - 1] + "…"


def _bars(report: AuditReport) -> str:
    """Requests per task, coloured by status."""
    tasks = report.tasks
    top = max((f.requests for f in tasks), default=1) or 1
    row, left = 22, 250
    parts = []
    for i, f in enumerate(tasks):
        y = i * row
        w = (_W - left - 80) * f.requests / top
        parts.append(
            f'<text x="0" y="{y + 15}">{_t(_label(f))}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{w:.1f}" height="14" '
            f'fill="{_COLORS[f.status]}"><title>{_t(f.status)}</title></rect>'
            f'<text x="{left + w + 4:.1f}" y="{y + 15}">{f.requests:,} ({f.share:.1%})</text>'
        )
    legend = "".join(
        f'<rect x="{left + i * 150}" y="{len(tasks) * row + 8}" width="10" height="10" '
        f'fill="{c}"/><text x="{left + i * 150 + 14}" y="{len(tasks) * row + 17}">'
        f"{_t(s.replace('_', ' '))}</text>"
        for i, (s, c) in enumerate(list(_COLORS.items())[:3])
    )
    height = len(tasks) * row + 30
    return f'<svg width="{_W}" height="{height}" role="img">{"".join(parts)}{legend}</svg>'


def _spend(report: AuditReport) -> str:
    """Spend per task, one segment per serving model."""
    models = sorted({str(s.model) for f in report.tasks for s in f.serving if s.model})
    color = {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(models)}
    top = max((f.spend_usd for f in report.tasks), default=0.0) or 1.0
    row, left = 22, 250
    parts = []
    for i, f in enumerate(report.tasks):
        y, x = i * row, float(left)
        parts.append(f'<text x="0" y="{y + 15}">{_t(_label(f))}</text>')
        for s in f.serving:
            if not s.model:
                continue
            w = (_W - left - 90) * s.usage.spend_usd / top
            parts.append(
                f'<rect x="{x:.1f}" y="{y + 4}" width="{w:.1f}" height="14" '
                f'fill="{color[s.model]}"><title>{_t(s.model)}: {usd(s.usage.spend_usd)}'
                "</title></rect>"
            )
            x += w
        parts.append(f'<text x="{x + 4:.1f}" y="{y + 15}">{usd(f.spend_usd)}</text>')
    y0 = len(report.tasks) * row + 8
    legend = "".join(
        f'<rect x="{left + i * 110}" y="{y0}" width="10" height="10" fill="{color[m]}"/>'
        f'<text x="{left + i * 110 + 14}" y="{y0 + 9}">{_t(m)}</text>'
        for i, m in enumerate(models)
    )
    return f'<svg width="{_W}" height="{y0 + 20}" role="img">{"".join(parts)}{legend}</svg>'


def _quality(f: TaskFinding) -> str:
    """Each candidate's measured quality and 95% interval on [0, 1], the threshold a line."""
    rows = [c for c in f.candidates if c.evidence.found is not None]
    if not rows or f.threshold is None:
        return '<p class="muted">no measured quality to draw</p>'
    row, left, width = 20, 160, _W - 200

    def x(v: float) -> float:
        return left + width * v

    parts = []
    for i, c in enumerate(rows):
        found = c.evidence.found
        assert found is not None
        y = i * row + 12
        low, high, mean = found.interval.low, found.interval.high, found.mean or 0.0
        colour = {"meets": "#5cb85c", "below": "#d9534f"}.get(c.evidence.verdict, "#999")
        parts.append(f'<text x="0" y="{y + 4}">{_t(c.model)} (n={found.n})</text>')
        if low is not None and high is not None:
            parts.append(
                f'<line x1="{x(low):.1f}" x2="{x(high):.1f}" y1="{y}" y2="{y}" '
                f'stroke="{colour}" stroke-width="2"/>'
            )
        parts.append(f'<circle cx="{x(mean):.1f}" cy="{y}" r="4" fill="{colour}"/>')
    height = len(rows) * row + 24
    t = x(f.threshold)
    axis = (
        f'<line x1="{t:.1f}" x2="{t:.1f}" y1="0" y2="{height - 14}" stroke="#333" '
        f'stroke-dasharray="4 3"/><text x="{t + 3:.1f}" y="{height - 2}">threshold '
        f"{f.threshold:g}</text>"
        f'<text x="{left}" y="{height - 2}">0</text><text x="{left + width - 6}" '
        f'y="{height - 2}">1</text>'
    )
    return f'<svg width="{_W}" height="{height}" role="img">{"".join(parts)}{axis}</svg>'


def _savings(report: AuditReport) -> str:
    s = report.savings
    if s is None or not report.over_requests:
        return '<p class="muted">nothing recoverable found on the evidence</p>'
    top = max(s.high_usd, s.monthly_usd, 1e-9)
    left, width = 160, _W - 220

    def x(v: float) -> float:
        return left + width * max(v, 0.0) / top

    return (
        f'<svg width="{_W}" height="50" role="img"><text x="0" y="24">per month</text>'
        f'<rect x="{left}" y="10" width="{x(s.monthly_usd) - left:.1f}" height="20" '
        f'fill="#f0ad4e"/><line x1="{x(s.low_usd):.1f}" x2="{x(s.high_usd):.1f}" y1="20" '
        f'y2="20" stroke="#333" stroke-width="2"/><text x="{x(s.high_usd) + 6:.1f}" y="24">'
        f"{usd(s.monthly_usd)} ({usd(s.low_usd)} to {usd(s.high_usd)})</text></svg>"
    )


def _task_table(report: AuditReport) -> str:
    head = "".join(
        f"<th>{h}</th>"
        for h in ("#", "task", "requests", "share", "spend", "served by", "cheapest qualified",
                  "status")
    )  # fmt: skip
    rows = []
    for i, f in enumerate(report.tasks, 1):
        served = ", ".join(
            f"{s.model or '(no answer)'} {s.usage.requests / max(f.requests, 1):.0%}"
            for s in f.serving
        )
        cheapest = (
            "-" if f.cheapest is None else f"{f.cheapest.model} " + (f.cheapest.evidence.describe())
        )
        cells = (i, task_name(f), f"{f.requests:,}", f"{f.share:.1%}", usd(f.spend_usd),
                 served, cheapest, f.status.replace("_", " "))  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{_t(c)}</td>" for c in cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def _task(i: int, f: TaskFinding) -> str:
    parts = [f"<h3>{i}. {_t(task_name(f))} <span class='muted'>({_t(f.status)})</span></h3>"]
    if f.threshold is not None:
        parts.append(
            f"<p>threshold {f.threshold:g} (from the {_t(f.threshold_from)}); a model meets it "
            "when the lower bound of its 95% interval does</p>"
        )
    parts += [f"<pre>{_t(e)}</pre>" for e in f.examples]
    why = "".join(
        f"<li>{_t(s.model or '(no answer)')} on {_t(s.route)}: {s.usage.requests:,} requests, "
        f"{_t(usd(s.usage.spend_usd))}"
        + "".join(
            f"<br><span class='muted'>{r.requests / max(s.usage.requests, 1):.0%}: "
            f"{_t(r.describe())}</span>"
            for r in sorted(s.reasons, key=lambda r: -r.requests)[:3]
        )
        + "</li>"
        for s in f.serving
    )
    parts.append(f"<ul>{why}</ul>")
    parts.append(_quality(f))
    parts += [f"<pre>{_t(m)}</pre>" for m in f.measure]
    if f.replay:
        share = f.replay.get("moved_share")
        moved = "" if share is None else f"{share:.0%} to {_t(f.replay['target'])}; "
        parts.append(f"<p>replayed under the change: {moved}n={f.replay['replayed']}</p>")
    return "".join(parts)


def render_html(report: AuditReport) -> str:
    t = report.totals
    when = datetime.fromtimestamp(report.since).strftime("%Y-%m-%d %H:%M")
    change = report.change
    snippet = (
        f"<h2>Policy change</h2><pre>{_t(change.snippet)}</pre>"
        + "".join(f"<p>{_t(n)}</p>" for n in change.notes)
        if change is not None and change.snippet
        else ""
    )
    body = (
        f"<h1>modelroute audit</h1><p class='muted'>{_t(report.source)}: {t.requests:,} "
        f"requests, {_t(usd(t.spend_usd))}, since {when}; policy {_t(report.policy or '-')}"
        f"</p><p class='headline'>{_t(report.headline())}</p>"
        + (f"<p>{_t(report.cache.describe())}</p>" if report.cache is not None else "")
        + f"<h2>Requests per task</h2>{_bars(report)}<h2>Spend per task and model</h2>"
        f"{_spend(report)}<h2>Recoverable spend</h2>{_savings(report)}"
        f"<h2>Tasks</h2>{_task_table(report)}"
        + "".join(_task(i, f) for i, f in enumerate(report.tasks, 1))
        + snippet
        + "".join(f"<p>{_t(n)}</p>" for n in report.notes)
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>modelroute audit</title><style>{_STYLE}</style></head><body>{body}</body></html>"
    )
