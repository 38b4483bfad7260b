"""A drift report as the terminal shows it: alerts in full, then one line per other finding."""

from __future__ import annotations

from datetime import UTC, datetime

from modelroute.analysis.drift.check import Report
from modelroute.analysis.drift.findings import Finding

_LABEL = {"alert": "ALERT", "ok": "ok", "not_enough_data": "no data"}


def render_report(report: Report) -> str:
    w = report.windows
    counts = report.counts()
    tested = sum(1 for f in report.findings if f.p_adjusted is not None)
    lines = [
        f"drift: current {_span(w.current_start, w.end)} against baseline "
        f"{_span(w.baseline_start, w.current_start)}",
        f"{counts['alert']} alert(s), {counts['ok']} checked without alert, "
        f"{counts['not_enough_data']} with not enough data; {tested} tests corrected together "
        f"(Benjamini-Hochberg, false discovery rate {report.thresholds.alpha})",
        *report.notes,
        "",
    ]
    for finding in report.findings:
        lines.extend(_finding(finding))
    return "\n".join(lines).rstrip()


def _finding(f: Finding) -> list[str]:
    head = f"{_LABEL[f.status]:<7} {f.kind:<15} {_subject(f)}"
    if f.status != "alert":
        return [f"{head}: {f.summary}{_p(f)}"]
    lines = [head, f"        {f.summary}"]
    if f.test is not None:
        effects = ", ".join(f"{k} {v:.3g}" for k, v in f.effect.items())
        lines.append(
            f"        {f.test}{_p(f)}; n={f.n_current} current, {f.n_baseline} baseline; "
            f"effect {effects}"
        )
    return lines


def _subject(f: Finding) -> str:
    return " ".join(f"{k}={v}" for k, v in f.subject.items() if v is not None) or "all traffic"


def _p(f: Finding) -> str:
    if f.p_value is None or f.p_adjusted is None:
        return ""
    return f" (p={f.p_value:.2g}, corrected {f.p_adjusted:.2g})"


def _span(start: float, end: float) -> str:
    def at(ts: float) -> str:
        return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M")

    return f"{at(start)} to {at(end)} UTC ({_duration(end - start)})"


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size < 1:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"
