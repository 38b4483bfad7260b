"""The compiled policy: plain, frozen data the planner reads in microseconds.

Everything that can be worked out once (price lookups, candidate lists, alias tables, the
effective retries and timeouts of each route) is worked out at load time, here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, TypeVar

from modelroute.errors import Problem
from modelroute.pricing import PriceTable


@dataclass(frozen=True, slots=True)
class BreakerPolicy:
    """One model's circuit breaker (see ``state/breakers.py`` for what each setting does)."""

    error_rate: float = 0.5
    min_calls: int = 50
    window_s: float = 10.0
    consecutive_failures: int = 10
    cooldown_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Model:
    name: str
    provider: str
    base_url: str
    model_id: str
    api_key_env: str | None  # the NAME of env:NAME; the key itself is never held here
    prices: PriceTable
    context_window: int
    max_output_tokens: int | None
    capabilities: frozenset[str]
    latency_p50_ms: float
    latency_p95_ms: float
    quality: Mapping[str, float]
    floating: bool
    drop_params: frozenset[str] = frozenset()  # request fields removed before sending
    # Metadata keys routing reads (task, limits, match rules), removed before sending
    # unless the policy sets forward_metadata (then this is empty).
    routing_metadata: frozenset[str] = frozenset()
    breaker: BreakerPolicy = BreakerPolicy()
    # requests and tokens per minute for the model (``per``: "model" or "key"), counted for
    # each request that calls it first
    rate_limit: RateRule | None = None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int  # attempts on one model, the first included
    backoff_ms: float
    max_backoff_ms: float
    on: frozenset[str]


@dataclass(frozen=True, slots=True)
class TimeoutPolicy:
    attempt_ms: int
    total_ms: int


@dataclass(frozen=True, slots=True)
class MatchRule:
    models: frozenset[str]
    tasks: frozenset[str]
    metadata: tuple[tuple[str, frozenset[str]], ...]
    min_prompt_tokens: int | None
    max_prompt_tokens: int | None
    tools: bool | None
    images: bool | None


@dataclass(frozen=True, slots=True)
class ConfidenceRule:
    signal: str
    threshold: float
    labels: tuple[str, ...]
    validator: str | None
    verifier: str | None


@dataclass(frozen=True, slots=True)
class ShadowRule:
    """Which models answer a sampled share of a route's requests again, off the request path."""

    models: tuple[str, ...]
    sample: float  # the share of successful requests shadowed, in (0, 1]
    judge: str | None  # the judging model; None compares by agreement (normalised exact match)
    max_usd_per_day: float  # per UTC day, shadow calls and judging together

    @property
    def grader(self) -> str:
        """The grader an outcome names: ``agreement`` or ``judge:MODEL``."""
        return "agreement" if self.judge is None else f"judge:{self.judge}"


class Scorer(Protocol):
    """A trained router: predicted score in [0, 1] per model for one prompt (see
    ``modelroute.learned``). Loaded once with the policy; called outside the planner."""

    @property
    def models(self) -> tuple[str, ...]: ...

    def scores(self, text: str, task: str | None = None) -> Mapping[str, float]: ...


@dataclass(frozen=True, slots=True)
class LearnedRule:
    """A learned route's trained router file, loaded once with the policy.

    ``rule`` "threshold": the route picks the cheapest candidate whose predicted score clears
    ``threshold``; the others follow as fallbacks, highest predicted score first.
    ``rule`` "score_minus_cost": candidates in order of predicted score - ``lam`` x their
    estimated cost (USD) for the request, highest first."""

    path: str  # as written in the policy (relative to the policy's directory)
    file: str  # the resolved path that was read
    file_hash: str  # sha256 of the router file's bytes
    kind: str  # the scorer kind (knn, linear, mf, category)
    threshold: float  # the policy's own, else the one calibrated at training
    threshold_source: str  # "policy" | "calibrated"
    target: float | None  # the quality target the threshold was calibrated to
    scorer: Scorer = field(compare=False, repr=False)
    rule: str = "threshold"  # "threshold" | "score_minus_cost"
    lam: float | None = None  # score per USD (score_minus_cost); the policy's or calibrated
    lambda_source: str | None = None  # "policy" | "calibrated"


@dataclass(frozen=True, slots=True)
class RateRule:
    """A route's or a model's rate limit (see ``state/limits.py``)."""

    requests_per_minute: int | None
    tokens_per_minute: int | None
    per: str  # "key" | "route" (a route's) | "model" (a model's)
    fail_open: bool  # admit unchecked while the shared state is unreachable


@dataclass(frozen=True, slots=True)
class BudgetRule:
    """A route's spend budget (see ``state/limits.py``)."""

    usd: float
    period: str  # "day" | "month" (UTC)
    per: str  # "route" | "key" | "team"
    on_budget: str  # "reject" | "degrade"
    fail_open: bool


@dataclass(frozen=True, slots=True)
class CacheRule:
    """A route's response cache (see ``modelroute.cache``)."""

    ttl_s: float
    allow_sampling: bool  # also cache requests that sample (temperature > 0 or unset)
    # On an exact miss, a cached answer to a paraphrase: the least cosine similarity of the
    # last user messages' embeddings (``cache/semantic.py``); None for exact matches only.
    similarity: float | None = None


@dataclass(frozen=True, slots=True)
class AffinityRule:
    """A route's session affinity (``policy/affinity_spec.py``; the planner's side in
    ``planner/affinity.py``)."""

    mode: str  # "sticky" | "adaptive"
    margin: float  # adaptive: a fraction of cost or latency, or quality points
    ttl_s: float  # a pin lapses after this long unused
    max_sessions: int  # pins kept for the route, least recently used dropped first


class Entry(NamedTuple):
    """One candidate of a route, in planning order, each model once (its first position).
    What the planner would otherwise look up per request is looked up here, once."""

    tier: int
    model: Model
    fallback: bool
    quality_binds: bool  # False for early cascade tiers: their bar is the confidence threshold
    prior: float | None  # the model's quality prior for this route
    stats_key: tuple[str, str]  # (route, model): its key in the statistics snapshot
    # The estimate's fields after its cost when nothing was measured (``Estimate`` order:
    # latency p95, its source, quality, its source, rated requests, no interval): the priors.
    priors: tuple[Any, ...]


def entry(tier: int, model: Model, fallback: bool, quality_binds: bool, route: str) -> Entry:
    prior = model.quality.get(route)
    source = "unknown" if prior is None else "prior"
    priors = (model.latency_p95_ms, "prior", prior, source, 0, None, None, None, None)
    return Entry(tier, model, fallback, quality_binds, prior, (route, model.name), priors)


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    aliases: tuple[str, ...]
    match: MatchRule | None
    max_latency_ms: float | None
    max_cost_usd: float | None
    min_quality: float | None
    objective: str
    strategy: str
    tiers: tuple[tuple[str, ...], ...]  # cascade: one per tier; otherwise exactly one
    fallbacks: tuple[str, ...]
    retries: RetryPolicy
    timeouts: TimeoutPolicy
    output_tokens: int
    # The share of a request's candidates that open circuits may rule out; the least-bad
    # open ones beyond it stay in the order, tried last, as probes.
    max_ejection_percent: int
    on_infeasible: str
    confidence: ConfidenceRule | None
    hedge_after_ms: float | None
    scorer: str | None
    min_quality_samples: int  # rated requests before measured quality replaces the prior
    entries: tuple[Entry, ...] = ()
    quality_compare: str = "mean"  # "mean" | "lower_bound": what must clear min_quality
    shadow: ShadowRule | None = None
    learned: LearnedRule | None = None  # strategy "learned": the trained router
    rate_limit: RateRule | None = None
    budget: BudgetRule | None = None
    cache: CacheRule | None = None
    affinity: AffinityRule | None = None  # None: every turn planned afresh


@dataclass(frozen=True, slots=True)
class Policy:
    """A loaded, validated policy. ``hash`` identifies its content; ``version`` is a label."""

    models: Mapping[str, Model]
    routes: Mapping[str, Route]
    names: Mapping[str, Route]  # route names and aliases
    direct: Mapping[str, Route]  # one per model, for requests that name a model
    matchers: tuple[Route, ...]  # routes with match rules, in declared order
    default_route: str | None
    hash: str
    version: str | None
    source: str
    warnings: tuple[Problem, ...] = field(default=())
    simulator: tuple[str, str, int] | None = None  # (config path as written, host, port)
    # The YAML it was loaded from (or the data it was built from, as YAML): kept by the
    # record store under ``hash`` so that the dashboard can show and diff versions.
    text: str | None = field(default=None, repr=False, compare=False)

    @property
    def short_hash(self) -> str:
        return self.hash[:12]


K = TypeVar("K")
V = TypeVar("V")


def frozen_map(items: dict[K, V]) -> Mapping[K, V]:
    return MappingProxyType(dict(items))


def route_entries(
    route: str,
    tiers: tuple[tuple[str, ...], ...],
    fallbacks: tuple[str, ...],
    models: Mapping[str, Model],
    cascade: bool,
) -> tuple[Entry, ...]:
    last = len(tiers) - 1
    seen: set[str] = set()
    out: list[Entry] = []
    listed = [(i, n, False) for i, tier in enumerate(tiers) for n in tier]
    listed += [(last, n, True) for n in fallbacks]
    for tier, name, fallback in listed:
        if name in seen or name not in models:
            continue
        seen.add(name)
        out.append(entry(tier, models[name], fallback, not cascade or tier == last, route))
    return tuple(out)
