"""A simulation report for the terminal, and as a self-contained HTML page with its curves."""

from __future__ import annotations

import html
from collections.abc import Sequence

from modelroute.analysis.simulate import metrics
from modelroute.analysis.simulate.report import Line, Report
from modelroute.outcomes.intervals import Interval
from modelroute.pricing import usd


def _interval(value: Interval | None, percent: bool = False) -> str:
    if value is None or value.mean is None:
        return "not enough evidence"
    if percent:
        low = "?" if value.low is None else f"{value.low:.0%}"
        high = "?" if value.high is None else f"{value.high:.0%}"
        return f"{value.mean:.0%} [{low}, {high}]"
    low = "?" if value.low is None else f"{value.low:.3f}"
    high = "?" if value.high is None else f"{value.high:.3f}"
    return f"{value.mean:.3f} [{low}, {high}]"


def _row(x: Line) -> list[str]:
    return [
        x.name,
        x.kind,
        _interval(x.quality),
        usd(x.cost),
        usd(x.total),
        _interval(x.vs_best),
        "" if x.strong_share is None else f"{x.strong_share:.0%}",
    ]


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    out = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    out += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return [line.rstrip() for line in out]


def render(report: Report, curve_lines: bool = True) -> str:
    kept = [x for x in report.lines if curve_lines or x.kind != "curve"]
    out = [
        f"{report.name} [{report.split}]: {report.prompts} prompts "
        f"({report.dropped} dropped: some model of the route has no outcome), "
        f"{len(report.models)} models; quality = mean score [95% interval]; "
        f"cost vs best = mean cost / {report.best}'s, paired bootstrap [95%]",
        "",
        *_table(
            ["routing", "kind", "quality", "$/prompt", "total", "cost vs best", "strong"],
            [_row(x) for x in kept],
        ),
        "",
    ]
    for t in report.targets:
        if t.line is None:
            out.append(
                f"at {t.share:.0%} of {report.best}'s quality ({t.quality_needed:.3f}): "
                "not reached by any point of the policy's curve"
            )
        else:
            out.append(
                f"at {t.share:.0%} of {report.best}'s quality ({t.quality_needed:.3f}): "
                f"{t.line.name} at {usd(t.line.cost)}/prompt, saving "
                f"{_interval(t.saving, percent=True)} (n={t.line.quality.n})"
            )
    same, ratio = report.same_quality
    if same is None:
        out.append("no single model reaches the policy's quality")
    else:
        out.append(
            f"cheapest single model at the policy's quality: {same}; the policy costs "
            f"{_interval(ratio)} of it"
        )
    aiq = report.aiq
    if "policy" in aiq:
        out.append(
            f"AIQ over ${aiq['c_min']:.6f}-${aiq['c_max']:.6f}/prompt: policy "
            f"{aiq['policy']:.4f}, zero router {aiq['zero_router']:.4f}; difference "
            f"{_interval(report.aiq_gain)} (n={report.prompts}, bootstrap)"
        )
    if report.pair is not None:
        p = report.pair
        out.append(
            f"{p.strong} / {p.weak}: APGR {_interval(p.apgr_interval)}, CPT(50%) {p.cpt50:.0%}, "
            f"CPT(80%) {p.cpt80:.0%} ({p.points} points)"
        )
    out += list(report.notes)
    return "\n".join(out)


_W, _H, _PAD = 760, 440, 56
_COLOURS = {
    "policy": "#d62728",
    "curve": "#d62728",
    "baseline": "#1f77b4",
    "model": "#555",
    "oracle": "#2ca02c",
    "random": "#9467bd",
}


def plot_html(report: Report) -> str:
    """The cost-quality plane: single models, the zero router's frontier, the policy's curve,
    the baselines and the oracle, as inline SVG (no script, no external file)."""
    lines = list(report.lines)
    xs = [x.cost for x in lines]
    ys = [x.quality.mean or 0.0 for x in lines]
    x0, x1 = min(xs), max(xs) or 1.0
    y0, y1 = min(ys), max(ys)
    y0, y1 = max(0.0, y0 - 0.05), min(1.0, y1 + 0.05)

    def at(cost: float, quality: float) -> tuple[float, float]:
        fx = 0.5 if x1 == x0 else (cost - x0) / (x1 - x0)
        fy = 0.5 if y1 == y0 else (quality - y0) / (y1 - y0)
        return _PAD + fx * (_W - 2 * _PAD), _H - _PAD - fy * (_H - 2 * _PAD)

    def path(points: Sequence[tuple[float, float]], colour: str, dash: str) -> str:
        d = " ".join(f"{a:.1f},{b:.1f}" for a, b in (at(*p) for p in points))
        return (
            f'<polyline points="{d}" fill="none" stroke="{colour}" '
            f'stroke-dasharray="{dash}" stroke-width="2"/>'
        )

    models = [(x.cost, x.quality.mean or 0.0) for x in lines if x.kind == "model"]
    own = sorted((x.cost, x.quality.mean or 0.0) for x in lines if x.kind in ("policy", "curve"))
    parts = [path(metrics.frontier(models), "#888", "6,4"), path(own, "#d62728", "")]
    for x in lines:
        cx, cy = at(x.cost, x.quality.mean or 0.0)
        colour = _COLOURS.get(x.kind, "#000")
        title = html.escape(f"{x.name}: quality {x.quality.describe()}, {usd(x.cost)}/prompt")
        parts.append(
            f'<circle cx="{cx:.1f}" cy="{cy:.1f}" r="4" fill="{colour}">'
            f"<title>{title}</title></circle>"
        )
        if x.kind != "curve":
            parts.append(
                f'<text x="{cx + 6:.1f}" y="{cy - 6:.1f}" font-size="10">'
                f"{html.escape(x.name)}</text>"
            )
    axes = (
        f'<line x1="{_PAD}" y1="{_H - _PAD}" x2="{_W - _PAD}" y2="{_H - _PAD}" stroke="#000"/>'
        f'<line x1="{_PAD}" y1="{_PAD}" x2="{_PAD}" y2="{_H - _PAD}" stroke="#000"/>'
        f'<text x="{_W / 2}" y="{_H - 16}" font-size="12">mean cost per prompt (USD): '
        f"{x0:.6f} to {x1:.6f}</text>"
        f'<text x="8" y="{_PAD - 16}" font-size="12">mean score: {y0:.2f} to {y1:.2f}</text>'
    )
    title = html.escape(f"{report.name} [{report.split}], {report.prompts} prompts")
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><h3>{title}</h3><svg xmlns='http://www.w3.org/2000/svg' width='{_W}' "
        f"height='{_H}'>{axes}{''.join(parts)}</svg>"
        f"<pre>{html.escape(render(report, curve_lines=False))}</pre></body></html>"
    )
