"""Regressions per (route, model, version): the current window against the baseline.

The current window is split by the version the provider reported; the baseline is the same
route and model over every version it ran as then, so a regression that came with a new
version and one that came without are both found. What is compared:

- latency and cost per request of requests answered ok (random samples of both windows);
- the error rate of the route's first choice: its first attempts that failed (a failed
  attempt reports no version, so this is per route and model);
- the escalation rate of a cascade's first tier: its answers doubted below the threshold;
- quality: outcome scores per source (an evaluation is compared with evaluations, shadow
  comparisons with shadow comparisons), from the outcomes table.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from modelroute.analysis.drift import queries, significance
from modelroute.analysis.drift.findings import Finding, not_enough
from modelroute.analysis.drift.settings import Thresholds, Windows
from modelroute.outcomes.intervals import difference, estimate
from modelroute.records.stores.base import Store

Counts = dict[str | None, list[float]]  # version -> [ok current, cost current]


async def served(
    store: Store, w: Windows, rows: Iterable[queries.GroupRow], t: Thresholds
) -> list[Finding]:
    """Latency and cost per (route, model, version)."""
    current: dict[tuple[str, str], Counts] = defaultdict(dict)
    baseline: dict[tuple[str, str], list[float]] = defaultdict(lambda: [0, 0.0])
    for r in rows:
        if r.route is None or r.model is None:
            continue
        key = (r.route, r.model)
        cur = current[key].setdefault(r.reported, [0, 0.0])
        cur[0] += r.ok_current
        cur[1] += r.cost_current
        baseline[key][0] += r.ok_baseline
        baseline[key][1] += r.cost_baseline
    out: list[Finding] = []
    for (route, model), versions in sorted(current.items()):
        base_n, base_cost = baseline[(route, model)]
        ready = {}
        for version, (n, cost) in versions.items():
            subject = {"route": route, "model": model, "version": version}
            if n == 0:
                continue  # the version ran only in the baseline
            if n < t.min_requests or base_n < t.min_requests:
                for kind in ("latency", "cost"):
                    out.append(not_enough(kind, subject, int(n), int(base_n), t.min_requests))
                continue
            ready[version] = (int(n), cost)
        if not ready:
            continue
        rates = {v: queries.rate(n, t.sample_size) for v, (n, _) in ready.items()}
        sample = await queries.served_sample(
            store, w, route, model, rates, queries.rate(int(base_n), t.sample_size)
        )
        for version, (n, cost) in ready.items():
            subject = {"route": route, "model": model, "version": version}
            lat, costs = sample.current[version]
            base_lat, base_costs = sample.baseline
            if not lat or not base_lat:
                continue
            out.append(_latency(subject, lat, base_lat, n, int(base_n), t))
            means = (cost / n, base_cost / base_n)
            out.append(_cost(subject, costs, base_costs, means, (n, int(base_n)), t))
    return out


def _latency(
    subject: dict[str, str | None],
    lat: list[float],
    base: list[float],
    n: int,
    base_n: int,
    t: Thresholds,
) -> Finding:
    tested, superiority = significance.shifted_up(lat, base)
    median, base_median = float(np.median(lat)), float(np.median(base))
    ratio = _ratio(median, base_median)
    return Finding(
        "latency",
        subject,
        f"median latency {median:.0f} ms against {base_median:.0f} ms (x{ratio:.2f}); "
        f"P(current > baseline) {superiority:.2f}",
        n_current=n,
        n_baseline=base_n,
        test=tested.test,
        statistic=tested.statistic,
        p_value=tested.p_value,
        effect={"median_ratio": ratio, "superiority": superiority},
        large_enough=ratio >= t.latency_ratio,
        evidence={"sampled": [len(lat), len(base)], "median_ms": [median, base_median]},
    )


def _cost(
    subject: dict[str, str | None],
    costs: list[float],
    base: list[float],
    means: tuple[float, float],
    counts: tuple[int, int],
    t: Thresholds,
) -> Finding:
    if min(costs) == max(costs) == min(base) == max(base):  # nothing to rank
        tested, superiority = significance.Tested("Mann-Whitney U", 0.0, 1.0), 0.5
    else:
        tested, superiority = significance.shifted_up(costs, base)
    ratio = _ratio(*means)
    return Finding(
        "cost",
        subject,
        f"cost per request ${means[0]:.6f} against ${means[1]:.6f} (x{ratio:.2f})",
        n_current=counts[0],
        n_baseline=counts[1],
        test=tested.test,
        statistic=tested.statistic,
        p_value=tested.p_value,
        effect={"mean_ratio": ratio, "superiority": superiority},
        large_enough=ratio >= t.cost_ratio,
        evidence={"sampled": [len(costs), len(base)], "mean_usd": list(means)},
    )


def _ratio(current: float, baseline: float) -> float:
    if baseline > 0:
        return current / baseline
    return float("inf") if current > 0 else 1.0


def first_attempts(
    rows: Iterable[queries.GroupRow], t: Thresholds, cascades: set[str]
) -> list[Finding]:
    """Error rate per (route, first choice); escalation rate per (route, first tier model,
    version) on ``cascades``."""
    tally: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    doubted: dict[tuple[str, str], Counts] = defaultdict(dict)
    doubted_base: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])
    for r in rows:
        if r.route is None or r.first_model is None or r.first_outcome in (None, "skipped"):
            continue
        key = (r.route, r.first_model)
        is_failed = int(r.first_outcome == "failed")
        counts = tally[key]  # attempts and failures, current then baseline
        counts[0] += r.n_current
        counts[1] += r.n_current * is_failed
        counts[2] += r.n_baseline
        counts[3] += r.n_baseline * is_failed
        if r.route in cascades and r.first_outcome in ("ok", "low_confidence"):
            is_low = int(r.first_outcome == "low_confidence")
            cur = doubted[key].setdefault(r.first_reported, [0, 0])
            cur[0] += r.n_current
            cur[1] += r.n_current * is_low
            doubted_base[key][0] += r.n_baseline
            doubted_base[key][1] += r.n_baseline * is_low
    out = []
    for (route, model), (n, failed, base_n, base_failed) in sorted(tally.items()):
        subject: dict[str, str | None] = {"route": route, "model": model}
        out.append(_rate("error_rate", subject, (failed, n), (base_failed, base_n), t))
    for (route, model), versions in sorted(doubted.items()):
        base = doubted_base[(route, model)]
        for version, (answered, low) in versions.items():
            if answered:
                subject = {"route": route, "model": model, "version": version}
                current = (int(low), int(answered))
                out.append(_rate("escalation_rate", subject, current, (base[1], base[0]), t))
    return out


def _rate(
    kind: str,
    subject: dict[str, str | None],
    current: tuple[int, int],
    baseline: tuple[int, int],
    t: Thresholds,
) -> Finding:
    (events, n), (base_events, base_n) = current, baseline
    if n < t.min_requests or base_n < t.min_requests:
        return not_enough(kind, subject, n, base_n, t.min_requests)
    tested = significance.rate_up(events, n, base_events, base_n)
    rate, base_rate = events / n, base_events / base_n
    threshold = t.error_increase if kind == "error_rate" else t.escalation_increase
    what = "errors" if kind == "error_rate" else "escalations"
    return Finding(
        kind,
        subject,
        f"{what} {rate:.1%} ({events}/{n}) against {base_rate:.1%} ({base_events}/{base_n})",
        n_current=n,
        n_baseline=base_n,
        test=tested.test,
        statistic=tested.statistic,
        p_value=tested.p_value,
        effect={"increase": rate - base_rate, "odds_ratio": tested.statistic},
        large_enough=rate - base_rate >= threshold,
        evidence={"rate": [rate, base_rate], "events": [events, base_events]},
    )


async def quality(
    store: Store, w: Windows, rows: Iterable[queries.OutcomeRow], t: Thresholds
) -> list[Finding]:
    """Mean outcome score per (route, model, version, source)."""
    groups: dict[tuple[str, str, str], list[queries.OutcomeRow]] = defaultdict(list)
    for r in rows:
        groups[(r.route, r.model, r.source)].append(r)
    out: list[Finding] = []
    for key, found in sorted(groups.items()):
        base_n = sum(r.n_baseline for r in found)
        base_sum = sum(r.sum_baseline for r in found)
        ready = {}
        for r in found:
            subject: dict[str, str | None] = {
                "route": key[0],
                "model": key[1],
                "version": r.version,
                "source": key[2],
            }
            if r.n_current == 0:
                continue
            if r.n_current < t.min_outcomes or base_n < t.min_outcomes:
                out.append(not_enough("quality", subject, r.n_current, base_n, t.min_outcomes))
            else:
                ready[r.version] = r
        if not ready:
            continue
        rates = {v: queries.rate(r.n_current, t.sample_size) for v, r in ready.items()}
        sampled, base = await queries.scores(
            store, w, key, rates, queries.rate(base_n, t.sample_size)
        )
        graded = any(r.graded for r in found)
        for version, r in ready.items():
            subject = {"route": key[0], "model": key[1], "version": version, "source": key[2]}
            cur = sampled[version]
            if cur and base:
                out.append(_quality(subject, r, (base_sum, base_n), cur, base, graded, t))
    return out


def _quality(
    subject: dict[str, str | None],
    r: queries.OutcomeRow,
    baseline: tuple[float, int],
    cur: list[float],
    base: list[float],
    graded: bool,
    t: Thresholds,
) -> Finding:
    base_sum, base_n = baseline
    mean, base_mean = r.sum_current / r.n_current, base_sum / base_n
    if graded:
        tested = significance.mean_down(cur, base)
    else:
        passes, base_passes = round(r.sum_current), round(base_sum)
        tested = significance.rate_down(passes, r.n_current, base_passes, base_n)
    now, then, change = estimate(cur), estimate(base), difference(base, cur)
    return Finding(
        "quality",
        subject,
        f"quality {now.describe()} against {then.describe()}; change {change.describe()}",
        n_current=r.n_current,
        n_baseline=base_n,
        test=tested.test,
        statistic=tested.statistic,
        p_value=tested.p_value,
        effect={"drop": base_mean - mean},
        large_enough=base_mean - mean >= t.quality_drop,
        evidence={
            "mean": [mean, base_mean],
            "interval": [[now.low, now.high], [then.low, then.high]],
            "change": [change.mean, change.low, change.high],
            "graded": graded,
        },
    )
