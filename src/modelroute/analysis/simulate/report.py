"""A simulation's findings against the baselines, every figure with its sample and interval.

Baselines, on the same prompts: every single model of the route, the oracle, random routing
at the policy's cost (each prompt sent to the best single model with the probability that
makes the expected cost equal, else to the cheapest; seeded), and the zero router (the best
random mix of single models at that cost, RouterBench). Quality is the mean score with its
interval (``outcomes.intervals.estimate``); a cost comparison is a paired bootstrap interval
of the ratio of mean costs over the same prompts (``calibration.paired_ratio``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from modelroute.analysis.calibration import paired_ratio
from modelroute.analysis.simulate import metrics
from modelroute.analysis.simulate.run import Routed
from modelroute.analysis.simulate.table import Floats, OutcomeTable
from modelroute.outcomes.intervals import Interval, estimate

TARGETS = (0.95, 0.98)
AIQ_RESAMPLES = 400  # bootstrap resamples of the AIQ and APGR intervals


@dataclass(frozen=True, slots=True)
class Line:
    name: str
    kind: str  # policy | curve | baseline | model | oracle | random | zero_router
    quality: Interval
    cost: float  # mean USD per prompt
    total: float  # USD over the prompts
    vs_best: Interval  # mean cost / the best single model's, paired over the prompts
    setting: float | None = None
    refused: int = 0
    strong_share: float | None = None  # share answered by the pair's strong model


@dataclass(frozen=True, slots=True)
class AtTarget:
    """The cheapest point of the policy's curve reaching ``share`` of the best model's
    quality (None: no point does)."""

    share: float
    quality_needed: float
    line: Line | None
    saving: Interval | None  # 1 - cost ratio to the best single model


@dataclass(frozen=True, slots=True)
class Pair:
    strong: str
    weak: str
    apgr: float
    cpt50: float
    cpt80: float
    points: int
    apgr_interval: Interval | None = None  # seeded bootstrap over prompts


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    split: str
    prompts: int
    dropped: int  # prompts some model of the route has no outcome for
    models: tuple[str, ...]
    best: str  # the best single model (highest mean score; cheaper on ties)
    cheapest: str
    lines: tuple[Line, ...]
    targets: tuple[AtTarget, ...]
    same_quality: tuple[str | None, Interval | None]  # cheapest model at the policy's quality
    aiq: dict[str, float]
    pair: Pair | None = None
    notes: tuple[str, ...] = field(default=())
    # AIQ(policy) - AIQ(zero router), with a bootstrap interval over the prompts
    aiq_gain: Interval | None = None

    def line(self, name: str) -> Line:
        return next(x for x in self.lines if x.name == name)


def _line(run: Routed, kind: str, best_costs: Floats, strong: int | None = None) -> Line:
    ratio = paired_ratio(run.costs, best_costs)
    share = None
    if strong is not None:
        share = float(np.mean(run.answered == strong)) if run.answered is not None else None
    return Line(
        run.name,
        kind,
        estimate(run.scores.tolist()),
        run.cost,
        float(run.costs.sum()),
        ratio,
        run.setting,
        run.refused,
        share,
    )


def single(table: OutcomeTable, model: str) -> Routed:
    j = table.column(model)
    answered = np.full(len(table), j)
    return Routed(
        model, table.scores[:, j], table.costs[:, j], {model: len(table)}, answered=answered
    )


def oracle_run(table: OutcomeTable) -> Routed:
    scores, costs = metrics.oracle(table.scores, table.costs)
    return Routed("oracle", scores, costs, {})


def random_at(table: OutcomeTable, cheap: str, best: str, cost: float, seed: int) -> Routed:
    """Each prompt to ``best`` with probability p, else ``cheap``: p makes the expected mean
    cost equal ``cost`` (clipped to [0, 1])."""
    low, high = table.column(cheap), table.column(best)
    c_low, c_high = float(table.costs[:, low].mean()), float(table.costs[:, high].mean())
    p = 0.0 if c_high <= c_low else min(max((cost - c_low) / (c_high - c_low), 0.0), 1.0)
    pick = np.random.default_rng(seed).random(len(table)) < p
    index = np.where(pick, high, low)
    rows = np.arange(len(table))
    return Routed(
        f"random {best}/{cheap} (p={p:.2f})",
        table.scores[rows, index],
        table.costs[rows, index],
        {best: int(pick.sum()), cheap: int((~pick).sum())},
        answered=index,
    )


def ranked(table: OutcomeTable) -> tuple[str, str]:
    """The best single model (highest mean score, cheaper on ties) and the cheapest."""
    quality = table.scores.mean(axis=0)
    cost = table.costs.mean(axis=0)
    best = min(range(len(table.models)), key=lambda j: (-quality[j], cost[j]))
    cheapest = min(range(len(table.models)), key=lambda j: (cost[j], -quality[j]))
    return table.models[best], table.models[cheapest]


def summarise(
    table: OutcomeTable,
    policy: Routed,
    curve: Sequence[Routed] = (),
    baselines: Sequence[tuple[Routed, Sequence[Routed]]] = (),
    pair: tuple[str, str] | None = None,
    pair_curve: Sequence[Routed] = (),
    meta: tuple[str, str, int] = ("outcomes", "all", 0),  # name, split, dropped prompts
    seed: int = 0,
) -> Report:
    """``policy`` (its own setting), its ``curve`` (the same policy, the setting swept), other
    routers to compare (``baselines``), against every single model of ``table``."""
    best, cheapest = ranked(table)
    best_costs = table.costs[:, table.column(best)]
    strong = table.column(pair[0]) if pair else None
    singles = [single(table, m) for m in table.models]
    lines = [_line(policy, "policy", best_costs, strong)]
    lines += [_line(r, "curve", best_costs, strong) for r in curve]
    lines += [_line(r, "baseline", best_costs, strong) for r, _ in baselines]
    lines += [_line(r, "model", best_costs, strong) for r in singles]
    lines.append(_line(oracle_run(table), "oracle", best_costs))
    lines.append(_line(random_at(table, cheapest, best, policy.cost, seed), "random", best_costs))
    model_points = [(r.cost, r.quality) for r in singles]
    zero_q = metrics.quality_at(metrics.frontier(model_points), policy.cost)
    points = [(r.cost, r.quality) for r in (policy, *curve)]
    c_min = min(c for c, _ in model_points)
    c_max = max(c for c, _ in model_points)
    aiq = {"c_min": c_min, "c_max": c_max}
    if c_max > c_min:
        aiq["policy"] = metrics.aiq(points, c_min, c_max)
        aiq["zero_router"] = metrics.aiq(model_points, c_min, c_max)
        for r, its_curve in baselines:
            own_points = [(x.cost, x.quality) for x in (r, *its_curve)]
            aiq[r.name] = metrics.aiq(own_points, c_min, c_max)
    if zero_q is not None:
        aiq["zero_router_quality_at_policy_cost"] = zero_q
    best_q = float(table.scores[:, table.column(best)].mean())
    targets = tuple(_at_target(share, best_q, lines, best_costs) for share in TARGETS)
    gain = aiq_gain([policy, *curve], singles, c_min, c_max, seed) if c_max > c_min else None
    return Report(
        meta[0],
        meta[1],
        len(table),
        meta[2],
        table.models,
        best,
        cheapest,
        tuple(lines),
        targets,
        _same_quality(table, policy, singles),
        aiq,
        _pair(table, pair, policy, pair_curve, seed) if pair else None,
        aiq_gain=gain,
    )


def _at_target(share: float, best_q: float, lines: list[Line], best_costs: Floats) -> AtTarget:
    needed = share * best_q
    own = [x for x in lines if x.kind in ("policy", "curve") and (x.quality.mean or 0) >= needed]
    if not own:
        return AtTarget(share, needed, None, None)
    found = min(own, key=lambda x: x.cost)
    ratio = found.vs_best
    saving = Interval(
        None if ratio.mean is None else 1 - ratio.mean,
        None if ratio.high is None else 1 - ratio.high,
        None if ratio.low is None else 1 - ratio.low,
        ratio.n,
        ratio.confidence,
        ratio.method,
    )
    return AtTarget(share, needed, found, saving)


def _same_quality(
    table: OutcomeTable, policy: Routed, singles: list[Routed]
) -> tuple[str | None, Interval | None]:
    """The cheapest single model at least as good as the policy, and the policy's cost as a
    share of that model's (paired)."""
    name = metrics.cheapest_reaching({r.name: (r.cost, r.quality) for r in singles}, policy.quality)
    if name is None:
        return None, None
    return name, paired_ratio(policy.costs, table.costs[:, table.column(name)])


def _pair(
    table: OutcomeTable,
    pair: tuple[str, str],
    policy: Routed,
    curve: Sequence[Routed],
    seed: int = 0,
    resamples: int = AIQ_RESAMPLES,
) -> Pair:
    strong, weak = pair
    s_col, w_col = table.column(strong), table.column(weak)
    runs = [r for r in curve if r.answered is not None] or [policy]
    to_strong = np.stack(
        [
            r.answered == s_col if r.answered is not None else np.zeros(len(table), bool)
            for r in runs
        ]
    ).astype(float)
    scores = np.stack([r.scores for r in runs])

    def measure(pick: npt.NDArray[np.int64] | slice) -> tuple[float, float, float]:
        shares = to_strong[:, pick].mean(axis=1).tolist()
        qualities = scores[:, pick].mean(axis=1).tolist()
        q_strong = float(table.scores[pick, s_col].mean())
        q_weak = float(table.scores[pick, w_col].mean())
        if q_strong == q_weak:
            return float("nan"), float("nan"), float("nan")
        return (
            metrics.apgr(shares, qualities, q_weak, q_strong),
            metrics.cpt(shares, qualities, q_weak, q_strong, 0.5),
            metrics.cpt(shares, qualities, q_weak, q_strong, 0.8),
        )

    apgr, cpt50, cpt80 = measure(slice(None))
    rng = np.random.default_rng(seed)
    draws = [measure(rng.integers(0, len(table), len(table)))[0] for _ in range(resamples)]
    low, high = np.nanpercentile(draws, [2.5, 97.5])
    spread = Interval(apgr, float(low), float(high), len(table), 0.95, "bootstrap")
    return Pair(strong, weak, apgr, cpt50, cpt80, len(runs), spread)


def report_dict(report: Report) -> dict[str, Any]:
    def interval(value: Interval | None) -> dict[str, Any] | None:
        if value is None:
            return None
        return {
            "mean": value.mean,
            "low": value.low,
            "high": value.high,
            "n": value.n,
            "confidence": value.confidence,
            "method": value.method,
        }

    def line(x: Line | None) -> dict[str, Any] | None:
        if x is None:
            return None
        return {
            "name": x.name,
            "kind": x.kind,
            "quality": interval(x.quality),
            "cost_per_prompt_usd": x.cost,
            "cost_total_usd": x.total,
            "cost_vs_best": interval(x.vs_best),
            "setting": x.setting,
            "refused": x.refused,
            "strong_share": x.strong_share,
        }

    same, ratio = report.same_quality
    return {
        "dataset": report.name,
        "split": report.split,
        "prompts": report.prompts,
        "dropped_incomplete": report.dropped,
        "models": list(report.models),
        "best_single_model": report.best,
        "cheapest_single_model": report.cheapest,
        "lines": [line(x) for x in report.lines],
        "targets": [
            {
                "share_of_best": t.share,
                "quality_needed": t.quality_needed,
                "line": line(t.line),
                "saving_vs_best": interval(t.saving),
            }
            for t in report.targets
        ],
        "cheapest_model_at_policy_quality": {"model": same, "cost_ratio": interval(ratio)},
        "aiq": report.aiq,
        "aiq_gain_over_zero_router": interval(report.aiq_gain),
        "pair": None
        if report.pair is None
        else {
            "strong": report.pair.strong,
            "weak": report.pair.weak,
            "apgr": report.pair.apgr,
            "cpt50": report.pair.cpt50,
            "cpt80": report.pair.cpt80,
            "apgr_interval": interval(report.pair.apgr_interval),
            "points": report.pair.points,
        },
        "notes": list(report.notes),
    }


def aiq_gain(
    own: Sequence[Routed],
    singles: Sequence[Routed],
    c_min: float,
    c_max: float,
    seed: int = 0,
    resamples: int = AIQ_RESAMPLES,
    confidence: float = 0.95,
) -> Interval:
    """AIQ of ``own`` (a router's points) minus the zero router's (``singles``), with a
    seeded percentile bootstrap over prompts: each resample draws the prompts once and
    recomputes every point's mean cost and quality on them, both curves together."""
    runs = [*own, *singles]
    scores = np.stack([r.scores for r in runs])  # (runs, prompts)
    costs = np.stack([r.costs for r in runs])
    n = scores.shape[1]

    def gain(q: Floats, c: Floats) -> float:
        mine = list(zip(c[: len(own)].tolist(), q[: len(own)].tolist(), strict=True))
        zero = list(zip(c[len(own) :].tolist(), q[len(own) :].tolist(), strict=True))
        return metrics.aiq(mine, c_min, c_max) - metrics.aiq(zero, c_min, c_max)

    point = gain(scores.mean(axis=1), costs.mean(axis=1))
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(resamples):
        pick = rng.integers(0, n, n)
        draws.append(gain(scores[:, pick].mean(axis=1), costs[:, pick].mean(axis=1)))
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Interval(point, float(low), float(high), n, confidence, "bootstrap")
