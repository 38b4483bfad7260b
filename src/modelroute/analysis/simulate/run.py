"""Each prompt through the planner, the chosen model's recorded outcome looked up.

A prompt becomes the chat request a client would send (one user message, its task as
``metadata.task``), read by ``features.request_context`` with the data's recorded input tokens
as its token count, and planned by the same function live traffic uses (``Decide``). The
first step of the decision answers; the data has no failures, so fallbacks never run. A
cascade asks its tiers in turn: an early tier's answer is kept when its recorded confidence
clears the route's threshold, or, where none was recorded, when a verifier accepts it (a
verifier that errs with probability ``verifier_error``, seeded); its cost is every asked
tier's cost. A request the policy refuses scores 0 at no cost and is counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from modelroute.analysis.simulate.table import Floats, OutcomeTable
from modelroute.errors import UnknownRouteError
from modelroute.features import request_context
from modelroute.learned import decide
from modelroute.planner import EMPTY_STATS, Decision, RequestContext, StatsSnapshot
from modelroute.policy.compiled import Policy, Route

Decide = Callable[[RequestContext, str, Policy, StatsSnapshot], Decision]


class SimulationError(ValueError):
    """The policy and the outcomes do not fit together; the message says how."""


@dataclass(frozen=True, slots=True)
class Routed:
    """One way of routing, prompt by prompt."""

    name: str
    scores: Floats
    costs: Floats
    chosen: Mapping[str, int]  # model -> prompts it answered (the last tier asked)
    refused: int = 0
    escalated: int = 0  # cascade prompts answered by a later tier
    unverified: int = 0  # cascade steps with no recorded confidence and no verifier
    setting: float | None = None  # the swept value (a threshold or a lambda), if any
    answered: npt.NDArray[np.int64] | None = None  # per prompt, the answering column (-1: none)

    @property
    def quality(self) -> float:
        return float(self.scores.mean()) if len(self.scores) else 0.0

    @property
    def cost(self) -> float:
        """Mean cost per prompt."""
        return float(self.costs.mean()) if len(self.costs) else 0.0


@dataclass(frozen=True, slots=True)
class Setup:
    policy: Policy
    route: str | None  # the request's "model": a route name (None: selected by task or match)
    columns: Mapping[str, str]  # policy model name -> the data's model name
    verifier_error: float | None = None
    seed: int = 0
    decide: Decide = decide
    confidences: Mapping[str, Floats] = field(default_factory=dict)  # signal -> (prompts, models)


def data_names(policy: Policy, table: OutcomeTable) -> dict[str, str]:
    """Each policy model the data scores: by its name, else its ``model_id``."""
    known = set(table.models)
    found: dict[str, str] = {}
    for name, model in policy.models.items():
        if name in known:
            found[name] = name
        elif model.model_id in known:
            found[name] = model.model_id
    return found


def route_of(policy: Policy, name: str | None) -> Route | None:
    if name is None:
        return None
    route = policy.names.get(name)
    if route is None:
        raise SimulationError(
            f"no route {name!r} in the policy (routes: {', '.join(policy.names)})"
        )
    return route


def check_models(columns: Mapping[str, str], route: Route) -> None:
    """Every model the route may answer with must be in the data."""
    missing = [e.model.name for e in route.entries if e.model.name not in columns]
    if missing:
        raise SimulationError(
            f"route {route.name!r}: no outcomes for {', '.join(missing)}; name each model as "
            "the data does (the policy's model name or its model_id)"
        )


def request(text: str, task: str, route: str | None) -> dict[str, object]:
    body: dict[str, object] = {"messages": [{"role": "user", "content": text}]}
    body["metadata"] = {"task": task}
    if route is not None:
        body["model"] = route
    return body


class _Fixed:
    """A token counter that gives the data's recorded count for the prompt's one text."""

    def __init__(self, count: int) -> None:
        self.count = count

    def __call__(self, _text: str) -> int:
        return self.count


def contexts(setup: Setup, table: OutcomeTable) -> list[RequestContext]:
    """Each prompt as the planner sees it, read from the request a client would send."""
    return [
        request_context(request(text, task, setup.route), counter=_Fixed(int(tokens)))
        for text, task, tokens in zip(table.texts, table.tasks, table.input_tokens, strict=True)
    ]


def decisions(setup: Setup, table: OutcomeTable) -> list[Decision | None]:
    """The decision per prompt through ``setup.decide`` (None: no route takes it)."""
    out: list[Decision | None] = []
    for ctx, text in zip(contexts(setup, table), table.texts, strict=True):
        try:
            out.append(setup.decide(ctx, text, setup.policy, EMPTY_STATS))
        except UnknownRouteError:
            out.append(None)
    return out


def simulate(setup: Setup, table: OutcomeTable, name: str = "policy") -> Routed:
    """Route every prompt of ``table`` and look up what the chosen model(s) recorded."""
    made = decisions(setup, table)
    return replay(setup, table, made, name)


def replay(setup: Setup, table: OutcomeTable, made: list[Decision | None], name: str) -> Routed:
    column = {m: table.column(d) for m, d in setup.columns.items() if d in table.models}
    rng = np.random.default_rng(setup.seed)
    scores = np.zeros(len(table))
    costs = np.zeros(len(table))
    chosen: Counter[str] = Counter()
    answered = np.full(len(table), -1, dtype=np.int64)
    refused = escalated = unverified = 0
    for i, decision in enumerate(made):
        if decision is None or not decision.tiers:
            refused += 1
            continue
        asked = [tier[0].model for tier in decision.tiers]
        if any(m not in column for m in asked):
            missing = ", ".join(m for m in asked if m not in column)
            raise SimulationError(f"the policy chose {missing}, which the data has no outcomes for")
        cascade = setup.policy.routes.get(decision.route)
        threshold, signal = _confidence(cascade)
        for step, model in enumerate(asked):
            j = column[model]
            costs[i] += table.costs[i, j]
            scores[i] = table.scores[i, j]
            if threshold is None or step == len(asked) - 1:
                break
            accepted = _accepts(setup, signal, threshold, i, j, table.scores[i, j], rng)
            if accepted is None:
                unverified += 1
                break
            if accepted:
                break
        chosen[model] += 1
        answered[i] = column[model]
        escalated += int(step > 0)
    return Routed(
        name, scores, costs, dict(chosen), refused, escalated, unverified, answered=answered
    )


def _confidence(route: Route | None) -> tuple[float | None, str | None]:
    if route is None or route.strategy != "cascade" or route.confidence is None:
        return None, None
    return route.confidence.threshold, route.confidence.signal


def _accepts(
    setup: Setup,
    signal: str | None,
    threshold: float,
    row: int,
    col: int,
    score: float,
    rng: np.random.Generator,
) -> bool | None:
    """Is an early tier's answer kept? By its recorded confidence, else by the verifier;
    None when neither is available (the answer is kept and counted as unverified)."""
    recorded = setup.confidences.get(signal or "")
    if recorded is not None and not np.isnan(recorded[row, col]):
        return bool(recorded[row, col] >= threshold)
    if setup.verifier_error is None:
        return None
    right = score >= 0.5
    return right != bool(rng.random() < setup.verifier_error)


def with_threshold(policy: Policy, route_name: str, value: float) -> Policy:
    """The policy with a cascade route's confidence threshold set to ``value``."""
    route = policy.routes[route_name]
    if route.confidence is None:
        raise SimulationError(f"route {route_name!r} has no confidence threshold to sweep")
    changed = replace(route, confidence=replace(route.confidence, threshold=value))
    return swap_route(policy, changed)


def swap_route(policy: Policy, changed: Route) -> Policy:
    """The policy with the route of the same name replaced by ``changed``."""
    name = changed.name
    routes = {**policy.routes, name: changed}
    names = {k: (changed if v.name == name else v) for k, v in policy.names.items()}
    matchers = tuple(changed if r.name == name else r for r in policy.matchers)
    return replace(policy, routes=routes, names=names, matchers=matchers)


def with_learned_threshold(policy: Policy, route_name: str, value: float) -> Policy:
    """The policy with a learned route's threshold set to ``value``."""
    route = policy.routes[route_name]
    if route.learned is None:
        raise SimulationError(f"route {route_name!r} is not learned")
    rule = replace(route.learned, threshold=value, threshold_source="policy")
    return swap_route(policy, replace(route, learned=rule))


def with_learned_lambda(policy: Policy, route_name: str, value: float) -> Policy:
    """The policy with a learned route under ``rule: score_minus_cost`` at lambda ``value``."""
    route = policy.routes[route_name]
    if route.learned is None or route.learned.rule != "score_minus_cost":
        raise SimulationError(f"route {route_name!r} is not learned with rule score_minus_cost")
    rule = replace(route.learned, lam=value, lambda_source="policy")
    return swap_route(policy, replace(route, learned=rule))


def restricted(policy: Policy, route_name: str, models: Sequence[str]) -> Policy:
    """The policy with a route's candidates narrowed to ``models`` (policy names)."""
    route = policy.routes[route_name]
    keep = set(models)
    entries = tuple(e for e in route.entries if e.model.name in keep)
    if len(entries) != len(keep):
        raise SimulationError(f"route {route_name!r} does not offer all of {', '.join(models)}")
    tiers = tuple(t for t in (tuple(m for m in tier if m in keep) for tier in route.tiers) if t)
    fallbacks = tuple(m for m in route.fallbacks if m in keep)
    return swap_route(policy, replace(route, entries=entries, tiers=tiers, fallbacks=fallbacks))
