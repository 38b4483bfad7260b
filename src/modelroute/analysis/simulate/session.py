"""One simulation from a policy and a table to a report: the pool of models, the split, the
policy as written, its curve (the route's setting swept), and the strong/weak pair."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from modelroute.analysis.simulate import splits
from modelroute.analysis.simulate.report import Report, summarise
from modelroute.analysis.simulate.run import (
    Routed,
    Setup,
    SimulationError,
    check_models,
    contexts,
    data_names,
    replay,
    restricted,
    route_of,
    simulate,
    swap_route,
    with_learned_lambda,
    with_learned_threshold,
    with_threshold,
)
from modelroute.analysis.simulate.table import OutcomeTable
from modelroute.learned import route_scores
from modelroute.learned.calibrate import lambda_grid
from modelroute.planner import EMPTY_STATS, Decision, RequestContext, plan
from modelroute.policy.compiled import Policy, Scorer

# Cascade thresholds tried for the curve: 0 (never escalate) to 1 (always, but for a
# confidence of exactly 1).
SWEEP = tuple(float(x) for x in np.round(np.linspace(0.0, 1.0, 21), 2))
# Learned thresholds tried: predicted scores are in [0, 1]; finer steps near the top, where
# the strong models part.
LEARNED_SWEEP = tuple(
    round(float(x), 3) for x in [*np.linspace(0.0, 0.8, 17), *np.linspace(0.82, 1.0, 10)]
)

# Lambdas tried for a score_minus_cost route: 0 and this many log steps over eight decades
# around 1 / the typical cost gap between a prompt's candidates (6 per decade).
LAMBDA_STEPS = 49


@dataclass(frozen=True, slots=True)
class Request:
    policy: Policy
    table: OutcomeTable
    route: str | None = None
    split: str = "all"
    seed: int = 0
    verifier_error: float | None = None
    pair: tuple[str, str] | None = None  # data names: strong, weak
    sweep: bool = True


def pool(policy: Policy, table: OutcomeTable, route: str | None) -> dict[str, str]:
    """Policy model -> data model, for the models the route may answer with (every model of
    the policy when the route is selected per request); each of the route's must be scored."""
    names = data_names(policy, table)
    chosen = route_of(policy, route)
    if chosen is not None:
        check_models(names, chosen)
        return {e.model.name: names[e.model.name] for e in chosen.entries}
    if not names:
        raise SimulationError("no model of the policy is in the outcome data")
    return names


class _Memo:
    """A route's scorer that scores each (prompt, task) once: the policy as written, its
    curve and the pair's curve read the same predictions."""

    def __init__(self, scorer: Scorer) -> None:
        self.scorer = scorer
        self.seen: dict[tuple[str, str | None], Mapping[str, float]] = {}

    @property
    def models(self) -> tuple[str, ...]:
        return self.scorer.models

    def scores(self, text: str, task: str | None = None) -> Mapping[str, float]:
        key = (text, task)
        found = self.seen.get(key)
        if found is None:
            found = self.seen[key] = self.scorer.scores(text, task)
        return found


def memoised(policy: Policy) -> Policy:
    """The policy with each learned route's scorer wrapped in a ``_Memo``."""
    for route in policy.routes.values():
        if route.learned is not None and not isinstance(route.learned.scorer, _Memo):
            learned = replace(route.learned, scorer=_Memo(route.learned.scorer))
            policy = swap_route(policy, replace(route, learned=learned))
    return policy


def prepare(req: Request) -> tuple[Setup, OutcomeTable, int]:
    """The setup, the prompts to simulate (the split, complete over the pool) and how many
    prompts of the split were dropped as incomplete."""
    columns = pool(req.policy, req.table, req.route)
    data_models = sorted(set(columns.values()))
    for name in req.pair or ():
        if name not in req.table.models:
            raise SimulationError(f"--pair: no outcomes for {name!r}")
        if name not in data_models:
            data_models.append(name)
    part = splits.select(req.table, req.split, req.seed)
    if not len(part):
        raise SimulationError(f"no prompts in split {req.split!r}")
    table = part.columns(data_models).complete()
    if not len(table):
        raise SimulationError("no prompt has an outcome from every model of the route")
    setup = Setup(
        memoised(req.policy),
        req.route,
        columns,
        req.verifier_error,
        req.seed,
        confidences=table.confidences,
    )
    return setup, table, len(part) - len(table)


def curve(setup: Setup, table: OutcomeTable) -> list[Routed]:
    """The route's setting swept: a learned route's threshold, or a cascade's confidence
    threshold when confidences were recorded; [] when there is nothing to sweep."""
    route = route_of(setup.policy, setup.route)
    if route is None:
        return []
    if route.learned is not None:
        return learned_curve(setup, table, route.name)
    if route.strategy != "cascade" or route.confidence is None:
        return []
    if route.confidence.signal not in setup.confidences:
        return []  # a verifier's verdict does not depend on the threshold
    out = []
    for value in SWEEP:
        varied = replace(setup, policy=with_threshold(setup.policy, route.name, value))
        out.append(_with_setting(simulate(varied, table, f"threshold {value:g}"), value))
    return out


def learned_curve(setup: Setup, table: OutcomeTable, route_name: str) -> list[Routed]:
    """A learned route with its setting swept: the threshold (``LEARNED_SWEEP`` and its own)
    under ``rule: threshold``; lambda (``lambda_sweep``, 0 and its own) under ``rule:
    score_minus_cost``. Each prompt is scored by the route's router (once: ``prepare``
    memoises it), then planned at every setting with those scores (what ``decide`` does)."""
    route = setup.policy.routes[route_name]
    learned = route.learned
    assert learned is not None
    ctxs = contexts(setup, table)
    scores = [
        route_scores(route, text, ctx.task) for ctx, text in zip(ctxs, table.texts, strict=True)
    ]

    def at(policy: Policy, name: str, value: float) -> Routed:
        made: list[Decision | None] = [
            plan(ctx, policy, EMPTY_STATS, s) for ctx, s in zip(ctxs, scores, strict=True)
        ]
        return _with_setting(replay(replace(setup, policy=policy), table, made, name), value)

    if learned.rule == "score_minus_cost":
        lams = lambda_sweep(ctxs, setup.policy, scores, learned.lam)
        return [
            at(with_learned_lambda(setup.policy, route_name, x), f"lambda {x:.4g}", x) for x in lams
        ]
    values = sorted({*LEARNED_SWEEP, round(learned.threshold, 6)})
    return [
        at(with_learned_threshold(setup.policy, route_name, v), f"threshold {v:g}", v)
        for v in values
    ]


def lambda_sweep(
    ctxs: Sequence[RequestContext],
    policy: Policy,
    scores: Sequence[Mapping[str, float] | None],
    own: float | None,
    steps: int = LAMBDA_STEPS,
) -> list[float]:
    """Lambdas to sweep, 0 first: ``learned.calibrate.lambda_grid`` (the grid ``train``
    calibrates on, ``steps`` log steps) over the planner's own estimated cost of each
    candidate for each prompt (lambda multiplies that estimate), and the policy's own."""
    rows = []
    for ctx, s in zip(ctxs, scores, strict=True):
        decision = plan(ctx, policy, EMPTY_STATS, s)
        rows.append({c.model: c.estimate.cost_usd for tier in decision.tiers for c in tier})
    names = sorted({m for row in rows for m in row})
    cost = np.array([[row.get(m, np.nan) for m in names] for row in rows], dtype=float)
    grid = [float(x) for x in lambda_grid(cost, steps)] if len(names) > 1 else [0.0]
    return sorted({*grid, *(() if own is None else (float(own),))})


def pair_curve(setup: Setup, table: OutcomeTable, pair: tuple[str, str]) -> list[Routed]:
    """The route narrowed to the strong and weak models, its setting swept (RouteLLM's
    two-model router); for a route that is not learned, its own curve."""
    route = route_of(setup.policy, setup.route)
    if route is None or route.learned is None:
        return curve(setup, table)
    by_data = {d: m for m, d in setup.columns.items()}
    names = [by_data.get(n) for n in pair]
    if None in names:
        raise SimulationError(f"--pair: both models must be candidates of route {route.name!r}")
    narrowed = restricted(setup.policy, route.name, [n for n in names if n is not None])
    return learned_curve(replace(setup, policy=narrowed), table, route.name)


def _with_setting(run: Routed, value: float) -> Routed:
    return Routed(
        run.name,
        run.scores,
        run.costs,
        run.chosen,
        run.refused,
        run.escalated,
        run.unverified,
        value,
        run.answered,
    )


@dataclass(frozen=True, slots=True)
class Evaluation:
    """A policy simulated on a table: as written, swept, and narrowed to the pair."""

    setup: Setup
    table: OutcomeTable  # the prompts simulated
    dropped: int
    own: Routed
    swept: list[Routed]
    paired: list[Routed]
    notes: tuple[str, ...]


def evaluate(req: Request) -> Evaluation:
    setup, table, dropped = prepare(req)
    own = simulate(setup, table, "policy")
    swept = curve(setup, table) if req.sweep else []
    paired = pair_curve(setup, table, req.pair) if req.pair and req.sweep else []
    return Evaluation(setup, table, dropped, own, swept, paired, _notes(setup, own, swept))


def _notes(setup: Setup, own: Routed, swept: list[Routed]) -> tuple[str, ...]:
    notes = []
    route = route_of(setup.policy, setup.route)
    if route is not None and route.strategy == "cascade":
        notes.append(
            "cascade cost counts every asked tier's recorded cost; a verifier's own calls are "
            "not counted"
        )
        if not swept:
            notes.append("no threshold sweep: no confidences recorded for the route's signal")
    if own.unverified:
        notes.append(
            f"{own.unverified} cascade answers had no recorded confidence and no verifier "
            "(--verifier-error): kept unverified"
        )
    if own.refused:
        notes.append(f"{own.refused} prompts refused by the policy: scored 0 at no cost")
    return tuple(notes)


def run(req: Request, baselines: Sequence[tuple[Routed, Sequence[Routed]]] = ()) -> Report:
    """Simulate ``req`` and compare it; ``baselines``: other routers on the same prompts,
    each as written and with its curve (for its AIQ)."""
    done = evaluate(req)
    report = summarise(
        done.table,
        done.own,
        done.swept,
        baselines,
        req.pair,
        done.paired,
        (req.table.name, req.split, done.dropped),
        req.seed,
    )
    return replace(report, notes=(*report.notes, *done.notes))
