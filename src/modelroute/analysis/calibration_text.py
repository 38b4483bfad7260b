"""A calibration as text for a terminal, and as plain data for ``--json``."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from modelroute.analysis.calibration import Calibration, Performance, SignalFit, Target
from modelroute.outcomes.intervals import Interval
from modelroute.pricing import usd

VERDICTS = {
    "calibrated": "the target holds on the held-out prompts",
    "held_out_miss": "the threshold fitted on the fit prompts misses the target on the "
    "held-out ones: the data cannot show that this cascade meets it",
    "cannot_meet": "no threshold meets the target on the fit prompts: this cascade cannot "
    "meet it on this data",
    "not_enough_evidence": "not enough evidence to calibrate",
}


def _measure_line(target: Target, p: Performance) -> str:
    measured = p.measure(target)
    return f"{target.kind} {measured.describe()}"


def _cost(p: Performance, strongest: str) -> str:
    if p.cost_usd is None or p.strongest_cost_usd is None:
        return "cost unknown (some outcomes have no cost)"
    text = f"cost {usd(p.cost_usd)} per request vs {usd(p.strongest_cost_usd)} for {strongest}"
    text += f" alone (n={p.quality.n})"
    if p.saving is not None and p.saving.mean is not None:
        text += f": saves {p.saving.describe()}"
    return text


def _signal_line(c: Calibration, s: SignalFit) -> str:
    head = f"  {s.signal} ({s.fit_prompts} fit prompts): "
    if s.why_not is not None:
        return head + s.why_not
    if s.chosen is not None:
        p = s.chosen
        return (
            head + f"threshold {p.threshold:g}: {_measure_line(c.target, p)}, "
            f"escalation {p.escalation.describe()}" + _cost_short(p)
        )
    if s.closest is not None:
        p = s.closest
        return (
            head + f"no threshold meets {c.target}; the closest is {p.threshold:g}: "
            f"{_measure_line(c.target, p)}"
        )
    return head + "no prompts"


def _cost_short(p: Performance) -> str:
    return "" if p.cost_usd is None else f", {usd(p.cost_usd)} per request"


def _evidence(c: Calibration) -> list[str]:
    held = round(c.paired_prompts * c.held_out_share)
    lines = [
        f"prompts scored by every tier: {c.paired_prompts}"
        + (f" ({c.unpaired_prompts} more scored by only some)" if c.unpaired_prompts else "")
        + f"; fit {c.paired_prompts - held}, held out {held} (split {c.held_out_share:g}, "
        f"seed {c.seed})"
    ]
    short = [s.prompts for s in c.signals if (s.why_not or "").startswith("not enough")]
    if c.verdict == "not_enough_evidence" and short:
        lines.append(
            f"not enough evidence: each part needs at least {c.min_per_part} prompts scored "
            f"by every tier with a confidence logged (the policy's quality.min_samples), so "
            f"at least {c.needed_prompts} in all at this split; there are {max(short)}"
        )
    return lines


def _held_out(c: Calibration, p: Performance) -> list[str]:
    measured = p.measure(c.target)
    holds = "meets" if p.holds(c.target) else "misses"
    mean = f" (mean {measured.mean:.3f})" if measured.mean is not None else ""
    low = measured.low
    margin = (
        ""
        if low is None
        else "; so does the interval's lower end"
        if low >= c.target.value
        else f"; the interval's lower end {low:.2f} is below it"
    )
    lines = [
        f"held out ({p.quality.n} prompts), threshold {p.threshold:g}:",
        f"  {c.target.kind} {measured.describe()}: {holds} the target {c.target}{mean}{margin}",
    ]
    if c.target.kind == "quality_ratio":
        lines.append(f"  accuracy {p.quality.describe()}")
    lines += [
        f"  {c.models[-1]} alone {p.strongest.describe()}; {c.models[0]} alone "
        f"{p.first.describe()}",
        f"  escalation {p.escalation.describe()}",
        f"  {_cost(p, c.models[-1])}",
    ]
    return lines


def render_calibration(c: Calibration) -> str:
    lines = [
        f"route {c.route}: cascade {' -> '.join(c.models)}; target {c.target}",
        f"policy: {c.current_signal} at threshold {c.current_threshold:g}",
        *_evidence(c),
    ]
    if c.signals:
        lines.append("fit: the cheapest threshold whose 95% interval lies at or above the target")
        lines += [_signal_line(c, s) for s in c.signals]
    else:
        lines.append(
            "no confidence is logged on the early tiers' outcomes (an outcome's "
            "confidences, by signal name): nothing to fit a threshold on"
        )
    if c.chosen is not None and c.chosen.chosen is not None:
        lines.append(f"chosen: {c.chosen.signal} at threshold {c.chosen.chosen.threshold:g}")
    if c.held_out is not None:
        lines += _held_out(c, c.held_out)
    lines.append(f"verdict: {VERDICTS[c.verdict]}")
    return "\n".join(lines)


def _interval(i: Interval | None) -> dict[str, Any] | None:
    return None if i is None else asdict(i)


def _performance(p: Performance | None) -> dict[str, Any] | None:
    if p is None:
        return None
    data = asdict(p)
    for key in ("quality", "first", "strongest", "ratio", "escalation", "saving"):
        data[key] = _interval(getattr(p, key))
    return data


def calibration_dict(c: Calibration) -> dict[str, Any]:
    return {
        "route": c.route,
        "models": list(c.models),
        "target": {"kind": c.target.kind, "value": c.target.value},
        "held_out_share": c.held_out_share,
        "seed": c.seed,
        "min_per_part": c.min_per_part,
        "needed_prompts": c.needed_prompts,
        "current": {"signal": c.current_signal, "threshold": c.current_threshold},
        "paired_prompts": c.paired_prompts,
        "unpaired_prompts": c.unpaired_prompts,
        "signals": [
            {
                "signal": s.signal,
                "prompts": s.prompts,
                "fit_prompts": s.fit_prompts,
                "held_prompts": s.held_prompts,
                "chosen": _performance(s.chosen),
                "closest": _performance(s.closest),
                "why_not": s.why_not,
            }
            for s in c.signals
        ],
        "chosen": None
        if c.chosen is None or c.chosen.chosen is None
        else {"signal": c.chosen.signal, "threshold": c.chosen.chosen.threshold},
        "held_out": _performance(c.held_out),
        "verdict": c.verdict,
    }
