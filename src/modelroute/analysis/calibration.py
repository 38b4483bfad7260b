"""Fitting a cascade's confidence threshold (and signal) to a quality target, from outcomes.

A threshold ``t`` accepts an early tier's answer when its confidence is at least ``t``; below
it the next tier answers (the last tier always does). Per prompt scored by every tier
(``cascade_outcomes.py``) that gives the cascade's score, its cost (every tier asked, added
up) and whether it escalated.

The prompts are split, seeded, into a fit part and a held-out part. On the fit part every
threshold that splits the observed confidences differently is tried, lowest (cheapest)
first; the first whose quality meets the target at the lower end of its 95% interval is
chosen (a margin against fitting noise), for each signal the route could declare, and the
cheapest signal wins. The held-out part then shows what that threshold does on prompts it
was not fitted to; only that says whether the target holds. Quality is an ``estimate``
interval; a quality ratio and a cost saving are paired bootstrap intervals (scipy).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
from scipy import stats

from modelroute.analysis.cascade_outcomes import CascadeOutcomes, Floats, Paired, tier_models
from modelroute.outcomes import Outcome
from modelroute.outcomes.intervals import Interval, estimate
from modelroute.policy.compiled import Policy, Route

TargetKind = Literal["accuracy", "quality_ratio"]
Verdict = Literal["calibrated", "held_out_miss", "cannot_meet", "not_enough_evidence"]
SIGNALS = ("logprobs", "label_probability", "validator", "verifier")
_TARGET = re.compile(r"\s*(accuracy|quality_ratio)\s*>=\s*(\d*\.?\d+)\s*")
_MAX_CANDIDATES = 200  # thresholds tried per signal; beyond, spread over the quantiles
_RESAMPLES = 2000
_SEED = 20240718


@dataclass(frozen=True, slots=True)
class Target:
    kind: TargetKind
    value: float

    def __str__(self) -> str:
        return f"{self.kind} >= {self.value:g}"


def parse_target(text: str) -> Target:
    """``accuracy>=0.9`` or ``quality_ratio>=0.95``; a ``ValueError`` says what is wrong."""
    found = _TARGET.fullmatch(text)
    if found is None:
        raise ValueError(f'target {text!r}: expected "accuracy>=0.9" or "quality_ratio>=0.95"')
    value = float(found.group(2))
    if not 0 < value <= 1:
        raise ValueError(f"target {text!r}: the value must be above 0 and at most 1")
    kind: TargetKind = "accuracy" if found.group(1) == "accuracy" else "quality_ratio"
    return Target(kind, value)


def paired_ratio(numerator: Floats, denominator: Floats, confidence: float = 0.95) -> Interval:
    """mean(numerator) / mean(denominator) over paired values, with a seeded percentile
    bootstrap interval that resamples the pairs together (scipy)."""
    n = len(numerator)
    if n == 0 or float(denominator.mean()) <= 0:
        return Interval(None, None, None, n, confidence, "none")
    point = float(numerator.mean() / denominator.mean())
    if n == 1 or (np.ptp(numerator) == 0 and np.ptp(denominator) == 0):
        return Interval(point, point, point, n, confidence, "bootstrap")

    def ratio(x: Floats, y: Floats, axis: int = -1) -> Floats:
        below = np.mean(y, axis=axis)
        safe = np.where(below > 0, below, 1.0)
        return np.asarray(np.where(below > 0, np.mean(x, axis=axis) / safe, np.nan))

    result = stats.bootstrap(
        (numerator, denominator),
        ratio,
        paired=True,
        vectorized=True,
        confidence_level=confidence,
        n_resamples=_RESAMPLES,
        method="percentile",
        rng=np.random.default_rng(_SEED),
    )
    low, high = (float(v) for v in result.confidence_interval)
    if not (math.isfinite(low) and math.isfinite(high)):
        return Interval(point, None, None, n, confidence, "bootstrap")
    return Interval(point, low, high, n, confidence, "bootstrap")


@dataclass(frozen=True, slots=True)
class Run:
    """The cascade at one threshold, per prompt."""

    scores: Floats
    costs: Floats  # NaN where a tier it asked had no cost
    escalated: npt.NDArray[np.bool_]


def run(data: Paired, threshold: float) -> Run:
    n = len(data)
    accepts = np.concatenate([data.confidences >= threshold, np.ones((n, 1), bool)], axis=1)
    tier = accepts.argmax(axis=1)  # the first tier whose answer is accepted
    rows = np.arange(n)
    spent = np.cumsum(data.costs, axis=1)
    return Run(data.scores[rows, tier], spent[rows, tier], tier > 0)


@dataclass(frozen=True, slots=True)
class Performance:
    """What a threshold does on a set of prompts, with intervals."""

    threshold: float
    quality: Interval  # the cascade's mean score
    first: Interval  # the first tier alone
    strongest: Interval  # the last tier alone
    ratio: Interval  # quality / the last tier's alone (paired)
    escalation: Interval  # share of prompts that escalated at least once
    cost_usd: float | None  # per request; None when a cost it needs is unknown
    strongest_cost_usd: float | None
    saving: Interval | None  # 1 - cost / the last tier's cost alone (paired)

    def measure(self, target: Target) -> Interval:
        return self.quality if target.kind == "accuracy" else self.ratio

    def holds(self, target: Target) -> bool:
        mean = self.measure(target).mean
        return mean is not None and mean >= target.value


def performance(data: Paired, threshold: float) -> Performance:
    done = run(data, threshold)
    strongest = data.scores[:, -1]
    cost = strongest_cost = saving = None
    if len(data) and not np.isnan(data.costs).any():
        cost, strongest_cost = float(done.costs.mean()), float(data.costs[:, -1].mean())
        share = paired_ratio(done.costs, data.costs[:, -1])
        if share.mean is not None:
            low, high = share.low, share.high
            saving = Interval(
                1 - share.mean,
                None if high is None else 1 - high,
                None if low is None else 1 - low,
                share.n,
                share.confidence,
                share.method,
            )
    return Performance(
        threshold=threshold,
        quality=estimate(done.scores.tolist()),
        first=estimate(data.scores[:, 0].tolist()),
        strongest=estimate(strongest.tolist()),
        ratio=paired_ratio(done.scores, strongest),
        escalation=estimate(done.escalated.astype(float).tolist()),
        cost_usd=cost,
        strongest_cost_usd=strongest_cost,
        saving=saving,
    )


def _between(low: float, high: float) -> float:
    """The roundest number above ``low`` and at most ``high``, near their middle."""
    middle = (low + high) / 2
    for digits in range(1, 16):
        rounded = round(middle, digits)
        if low < rounded <= high:
            return rounded
    return high


def candidates(confidences: Floats) -> list[float]:
    """One threshold per way the observed confidences can be split (accepted at or above
    it), lowest first, each a round number between the highest confidence it escalates and
    the lowest it accepts; the last escalates everything, when a threshold can."""
    values = np.unique(np.clip(confidences, 0.0, 1.0))
    if values.size > _MAX_CANDIDATES:
        spread = np.linspace(0, 1, _MAX_CANDIDATES)
        values = np.unique(np.quantile(values, spread, method="inverted_cdf"))
    out: list[float] = []
    below = 0.0
    for value in values.tolist():
        out.append(0.0 if value <= 0 else _between(below, value))
        below = value
    if not out or below < 1.0:
        out.append(_between(below, 1.0))
    return out


def _point(done: Run, strongest: Floats, target: Target) -> float:
    if target.kind == "accuracy":
        return float(done.scores.mean())
    below = float(strongest.mean())
    return float(done.scores.mean()) / below if below > 0 else -math.inf


def _interval(done: Run, strongest: Floats, target: Target) -> Interval:
    if target.kind == "accuracy":
        return estimate(done.scores.tolist())
    return paired_ratio(done.scores, strongest)


def fit(data: Paired, target: Target) -> tuple[Performance | None, Performance | None]:
    """(the cheapest threshold meeting the target on ``data``, else None; when none does,
    the threshold that came closest)."""
    strongest = data.scores[:, -1]
    closest, closest_point = None, -math.inf
    for threshold in candidates(data.confidences):
        done = run(data, threshold)
        point = _point(done, strongest, target)
        if point > closest_point:
            closest, closest_point = threshold, point
        if point < target.value:
            continue
        low = _interval(done, strongest, target).low
        if low is not None and low >= target.value:
            return performance(data, threshold), None
    return None, None if closest is None else performance(data, closest)


def unusable(policy: Policy, route: Route, signal: str) -> str | None:
    """Why the route could not declare ``signal`` as it stands, or None."""
    rule = route.confidence
    assert rule is not None
    if signal not in SIGNALS:
        return "not a confidence signal a policy can declare"
    if signal == rule.signal:
        return None
    needs = {"label_probability": rule.labels, "validator": rule.validator}
    needs["verifier"] = rule.verifier
    if signal in needs and not needs[signal]:
        setting = {"label_probability": "labels", "validator": "validator", "verifier": "verifier"}
        return f"the route's confidence block declares no '{setting[signal]}'"
    if signal in ("logprobs", "label_probability"):
        for tier in route.tiers[:-1]:
            for name in tier:
                if "logprobs" not in policy.models[name].capabilities:
                    return f"model {name!r} cannot report logprobs"
    return None


def split(keys: Iterable[str], held_out: float, seed: int) -> tuple[set[str], set[str]]:
    """(fit, held out): a seeded permutation of the prompts, ``held_out`` of them held out."""
    ordered = sorted(keys)
    order = np.random.default_rng(seed).permutation(len(ordered))
    held = {ordered[i] for i in order[: round(len(ordered) * held_out)].tolist()}
    return set(ordered) - held, held


@dataclass(frozen=True, slots=True)
class SignalFit:
    signal: str
    prompts: int  # paired prompts with this signal logged
    fit_prompts: int
    held_prompts: int
    chosen: Performance | None = None  # on the fit part, at the chosen threshold
    closest: Performance | None = None  # when no threshold met the target: the nearest
    why_not: str | None = None  # not usable, or not enough evidence


@dataclass(frozen=True, slots=True)
class Calibration:
    route: str
    models: tuple[str, ...]
    target: Target
    held_out_share: float
    seed: int
    min_per_part: int  # paired prompts each part needs (the policy's quality.min_samples)
    current_signal: str
    current_threshold: float
    paired_prompts: int
    unpaired_prompts: int
    signals: tuple[SignalFit, ...]
    chosen: SignalFit | None
    held_out: Performance | None
    verdict: Verdict

    @property
    def needed_prompts(self) -> int:
        """Paired prompts that give each part ``min_per_part`` at this split."""
        smaller = min(self.held_out_share, 1 - self.held_out_share)
        return math.ceil(self.min_per_part / smaller)


@dataclass(frozen=True, slots=True)
class Request:
    """What to calibrate: a cascade route of a policy, its outcomes, the target."""

    policy: Policy
    route: Route
    outcomes: Sequence[Outcome]
    target: Target
    held_out: float = 0.5
    seed: int = 0
    only: str | None = None  # one signal, instead of every one logged


def _fit_signal(
    request: Request, data: CascadeOutcomes, parts: tuple[set[str], set[str]], signal: str
) -> tuple[SignalFit, Paired]:
    paired = data.paired(signal)
    fit_part, held_part = paired.subset(parts[0]), paired.subset(parts[1])
    counts = (len(paired), len(fit_part), len(held_part))
    why = unusable(request.policy, request.route, signal)
    need = request.route.min_quality_samples
    if why is None and min(counts[1:]) < need:
        why = f"not enough evidence: {counts[1]} fit and {counts[2]} held-out prompts"
    if why is not None:
        return SignalFit(signal, *counts, why_not=why), held_part
    chosen, closest = fit(fit_part, request.target)
    return SignalFit(signal, *counts, chosen=chosen, closest=closest), held_part


def _cheaper(a: Performance, b: Performance) -> bool:
    if a.cost_usd is not None and b.cost_usd is not None and a.cost_usd != b.cost_usd:
        return a.cost_usd < b.cost_usd
    if a.escalation.mean != b.escalation.mean:
        return (a.escalation.mean or 0.0) < (b.escalation.mean or 0.0)
    return (a.quality.mean or 0.0) > (b.quality.mean or 0.0)


def calibrate(request: Request) -> Calibration:
    route = request.route
    assert route.confidence is not None and len(route.tiers) >= 2
    data = CascadeOutcomes.collect(request.outcomes, tier_models(route))
    logged: Mapping[str, int] = data.signals()
    names = [request.only] if request.only else sorted(logged, key=lambda s: (-logged[s], s))
    parts = split(data.by_prompt, request.held_out, request.seed)
    fits, held = [], {}
    for name in names:
        signal_fit, held[name] = _fit_signal(request, data, parts, name)
        fits.append(signal_fit)
    chosen: tuple[SignalFit, Performance] | None = None
    for candidate in fits:
        if candidate.chosen is not None and (
            chosen is None or _cheaper(candidate.chosen, chosen[1])
        ):
            chosen = candidate, candidate.chosen
    held_out = None
    if chosen is not None:
        held_out = performance(held[chosen[0].signal], chosen[1].threshold)
    verdict: Verdict
    if held_out is not None:
        verdict = "calibrated" if held_out.holds(request.target) else "held_out_miss"
    elif any(f.why_not is None for f in fits):
        verdict = "cannot_meet"
    else:
        verdict = "not_enough_evidence"
    return Calibration(
        route=route.name,
        models=data.models,
        target=request.target,
        held_out_share=request.held_out,
        seed=request.seed,
        min_per_part=route.min_quality_samples,
        current_signal=route.confidence.signal,
        current_threshold=route.confidence.threshold,
        paired_prompts=len(data.by_prompt),
        unpaired_prompts=data.unpaired,
        signals=tuple(fits),
        chosen=None if chosen is None else chosen[0],
        held_out=held_out,
        verdict=verdict,
    )
