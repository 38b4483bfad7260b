"""From a schema-valid ``PolicySpec`` to a compiled ``Policy``: cross-checks and lookups.

Every problem is collected, never raised one at a time, so a user fixes a file in one pass.
"""

from __future__ import annotations

import difflib
import hashlib
import re
from collections.abc import Collection, Iterable, Mapping
from typing import TYPE_CHECKING

import orjson

from modelroute.errors import Problem
from modelroute.policy import compiled as c
from modelroute.policy.affinity_spec import AffinityMode, AffinitySpec
from modelroute.policy.prices import lookup_prices
from modelroute.policy.schema import (
    CascadeStrategy,
    CheapestQualifiedStrategy,
    CircuitBreaker,
    FixedStrategy,
    LearnedStrategy,
    ModelRateLimit,
    ModelSpec,
    Objective,
    OnBudget,
    PolicySpec,
    QualityCompare,
    QualitySettings,
    RateLimit,
    RouteSpec,
    Shadow,
    WhenStateDown,
)
from modelroute.policy.source import Path, Source
from modelroute.pricing import PriceTable, merge_prices
from modelroute.request_fields import ROUTING_METADATA_KEYS

if TYPE_CHECKING:
    from modelroute.learned.format import LoadedRouter

# A provider id is pinned when it carries a date or a numbered snapshot: gpt-4o-2024-08-06,
# claude-3-5-haiku-20241022, gpt-3.5-turbo-0125, gemini-1.5-pro-002, or an explicit tag.
_PINNED = re.compile(r"(\d{4}-\d{2}-\d{2}|\d{8}|-\d{3,4}$|@[\w.-]+$|:[\w.-]+$|-v\d+(\.\d+)*$)")


def is_pinned(model_id: str) -> bool:
    return "latest" not in model_id and bool(_PINNED.search(model_id))


def _suggest(name: str, known: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.5)
    return f"did you mean {close[0]!r}?" if close else None


class _Builder:
    def __init__(
        self,
        spec: PolicySpec,
        source: Source,
        provider_kinds: Collection[str],
        routers: Mapping[str, LoadedRouter],
    ) -> None:
        self.spec = spec
        self.source = source
        self.provider_kinds = provider_kinds
        self.routers = routers
        self.problems: list[Problem] = []

    def error(self, path: Path, message: str, hint: str | None = None) -> None:
        self.problems.append(self.source.problem(path, message, hint))

    def warn(self, path: Path, message: str, hint: str | None = None) -> None:
        self.problems.append(self.source.problem(path, message, hint, severity="warning"))

    # models ---------------------------------------------------------------------------------
    def model(self, name: str, spec: ModelSpec, routing_metadata: frozenset[str]) -> c.Model | None:
        path: Path = ("models", name)
        if spec.provider not in self.provider_kinds:
            hint = _suggest(spec.provider, self.provider_kinds)
            known = "known kinds: " + ", ".join(self.provider_kinds)
            self.error(
                (*path, "provider"),
                f"unknown provider kind {spec.provider!r}",
                f"{hint} ({known})" if hint else known,
            )
            return None
        if not spec.allow_floating and not is_pinned(spec.model_id):
            self.warn(
                (*path, "model_id"),
                f"model id {spec.model_id!r} is not pinned to a version; "
                "the provider may change the model under you",
                "pin a dated snapshot (e.g. gpt-4o-2024-08-06) or set allow_floating: true",
            )
        if spec.provider == "anthropic" and "responses" in spec.capabilities:
            self.error(
                (*path, "capabilities"),
                "an anthropic model cannot serve OpenAI's Responses API natively",
                "remove 'responses' (its Responses requests are bridged through Messages)",
            )
        prices = self.prices(path, spec)
        if prices is None:
            return None
        return c.Model(
            name=name,
            provider=spec.provider,
            base_url=spec.base_url.rstrip("/"),
            model_id=spec.model_id,
            api_key_env=spec.api_key[len("env:") :] if spec.api_key else None,
            prices=prices,
            context_window=spec.context_window,
            max_output_tokens=spec.max_output_tokens,
            capabilities=frozenset(cap.value for cap in spec.capabilities),
            latency_p50_ms=spec.latency.p50_ms,
            latency_p95_ms=spec.latency.p95_ms,
            quality=c.frozen_map(spec.quality),
            floating=not is_pinned(spec.model_id),
            drop_params=frozenset(param.value for param in spec.drop_params),
            routing_metadata=frozenset() if spec.forward_metadata else routing_metadata,
            breaker=self.breaker(spec),
            rate_limit=_rate_rule(spec.rate_limit),
        )

    def breaker(self, spec: ModelSpec) -> c.BreakerPolicy:
        """The defaults' circuit-breaker settings, with the model's own on top."""
        merged = self.spec.defaults.circuit_breaker.model_dump(exclude={"max_ejection_percent"})
        if spec.circuit_breaker is not None:
            merged.update(spec.circuit_breaker.model_dump(exclude_none=True))
        return c.BreakerPolicy(**merged)

    def prices(self, path: Path, spec: ModelSpec) -> PriceTable | None:
        declared = spec.prices.model_dump()
        published = None
        if declared["input"] is None or declared["output"] is None:
            published = lookup_prices(spec.provider, spec.model_id, spec.base_url)
        table = merge_prices(declared, published)
        if table is None:
            self.error(
                (*path, "prices"),
                f"no price known for {spec.provider} model {spec.model_id!r}",
                "declare prices: {input: ..., output: ...} in USD per million tokens "
                "(0 for a self-hosted model)",
            )
        return table

    # routes ---------------------------------------------------------------------------------
    def check_ref(self, path: Path, name: str) -> None:
        if name not in self.spec.models:
            route = path[1]
            hint = _suggest(name, self.spec.models) or "models: " + ", ".join(self.spec.models)
            self.error(path, f"route {route!r} references unknown model {name!r}", hint)

    def tiers(self, name: str, route: RouteSpec) -> tuple[tuple[str, ...], ...]:
        base: Path = ("routes", name, "strategy")
        strategy = route.strategy
        if isinstance(strategy, CascadeStrategy):
            for t, tier in enumerate(strategy.tiers):
                for i, model in enumerate(tier):
                    self.check_ref((*base, "tiers", t, i), model)
            self.cascade_signal(name, strategy)
            return tuple(tuple(tier) for tier in strategy.tiers)
        if isinstance(strategy, CheapestQualifiedStrategy):
            models = strategy.models or list(self.spec.models)
        else:
            assert isinstance(strategy, FixedStrategy | LearnedStrategy)
            models = strategy.models
        if isinstance(strategy, FixedStrategy) and route.objective is not None:
            self.error(
                ("routes", name, "objective"),
                "strategy 'fixed' keeps the declared order; an objective has no effect",
                "remove 'objective', or use 'cheapest_qualified' to order by it",
            )
        for i, model in enumerate(models):
            self.check_ref((*base, "models", i), model)
        return (tuple(models),)

    def cascade_signal(self, name: str, strategy: CascadeStrategy) -> None:
        conf = strategy.confidence
        path: Path = ("routes", name, "strategy", "confidence")
        if conf.signal.value == "verifier":
            if conf.verifier is None:
                self.error(path, "confidence signal 'verifier' needs 'verifier: MODEL'")
            else:
                self.check_ref((*path, "verifier"), conf.verifier)
        if conf.signal.value == "label_probability" and not conf.labels:
            self.error(
                path,
                "confidence signal 'label_probability' needs 'labels: [...]'",
                "list the answers the classifier may give",
            )
        if conf.signal.value == "validator" and conf.validator is None:
            self.error(path, "confidence signal 'validator' needs 'validator: json|regex:...'")
        elif conf.signal.value == "validator" and conf.validator is not None:
            self.check_validator((*path, "validator"), conf.validator)
        if conf.signal.value in ("logprobs", "label_probability"):
            for t, tier in enumerate(strategy.tiers[:-1]):
                for i, model in enumerate(tier):
                    spec = self.spec.models.get(model)
                    if spec is not None and "logprobs" not in spec.capabilities:
                        self.error(
                            ("routes", name, "strategy", "tiers", t, i),
                            f"model {model!r} cannot report logprobs, which this "
                            "cascade's confidence signal needs",
                            f"add 'logprobs' to {model}'s capabilities if it has them, "
                            "or use a validator or verifier signal",
                        )

    def check_validator(self, path: Path, validator: str) -> None:
        """A validator nobody can pass would escalate every answer without a word."""
        if validator == "json":
            return
        if not validator.startswith("regex:"):
            self.error(
                path,
                f"unknown validator {validator!r}",
                "use 'json' or 'regex:PATTERN' (the whole answer must match)",
            )
            return
        try:
            re.compile(validator[len("regex:") :])
        except re.error as exc:
            self.error(path, f"the validator's pattern does not compile: {exc}")

    def route(self, name: str, spec: RouteSpec, models: dict[str, c.Model]) -> c.Route:
        tiers = self.tiers(name, spec)
        for i, model in enumerate(spec.fallbacks):
            self.check_ref(("routes", name, "fallbacks", i), model)
        defaults = self.spec.defaults
        retries = spec.retries or defaults.retries
        timeouts = spec.timeouts or defaults.timeouts
        strategy = spec.strategy
        conf = strategy.confidence if isinstance(strategy, CascadeStrategy) else None
        return c.Route(
            name=name,
            aliases=tuple(spec.aliases),
            match=self.match(name, spec),
            max_latency_ms=spec.constraints.max_latency_ms,
            max_cost_usd=spec.constraints.max_cost_usd,
            min_quality=spec.constraints.min_quality,
            objective="declared_order"
            if strategy.kind == "fixed"
            else (spec.objective or Objective.MIN_COST).value,
            strategy=strategy.kind,
            tiers=tiers,
            fallbacks=tuple(spec.fallbacks),
            retries=c.RetryPolicy(
                retries.max_attempts,
                retries.backoff_ms,
                retries.max_backoff_ms,
                frozenset(x.value for x in retries.on),
            ),
            timeouts=c.TimeoutPolicy(timeouts.attempt_ms, timeouts.total_ms),
            output_tokens=spec.output_tokens or defaults.output_tokens,
            max_ejection_percent=defaults.circuit_breaker.max_ejection_percent,
            on_infeasible=spec.on_infeasible.value,
            confidence=None
            if conf is None
            else c.ConfidenceRule(
                conf.signal.value, conf.threshold, tuple(conf.labels), conf.validator, conf.verifier
            ),
            hedge_after_ms=spec.hedge_after_ms,
            scorer=strategy.router if isinstance(strategy, LearnedStrategy) else None,
            min_quality_samples=defaults.quality.min_samples,
            entries=c.route_entries(
                name, tiers, tuple(spec.fallbacks), models, strategy.kind == "cascade"
            ),
            quality_compare=(
                (spec.quality and spec.quality.compare) or defaults.quality.compare
            ).value,
            shadow=self.shadow(name, spec.shadow),
            learned=self.learned(name, spec),
            rate_limit=_rate_rule(spec.rate_limit),
            budget=_budget_rule(spec),
            cache=None
            if spec.cache is None
            else c.CacheRule(spec.cache.ttl, spec.cache.allow_sampling),
            affinity=_affinity_rule(spec),
        )

    def learned(self, name: str, spec: RouteSpec) -> c.LearnedRule | None:
        """The route's trained router, checked against the models the route names. A file
        that could not be read is reported where it is read (``load.py``)."""
        strategy = spec.strategy
        if not isinstance(strategy, LearnedStrategy):
            return None
        loaded = self.routers.get(name)
        if loaded is None:
            return None
        known = set(loaded.models)
        for i, model in enumerate(strategy.models):
            if model not in known:
                self.error(
                    ("routes", name, "strategy", "models", i),
                    f"model {model!r} has no scores in router file {strategy.router!r} "
                    f"(trained for: {', '.join(loaded.models)})",
                    "retrain the router with this model in --models, or remove it here",
                )
        threshold = strategy.threshold
        lam = strategy.lambda_ if strategy.lambda_ is not None else loaded.lam
        if strategy.rule == "score_minus_cost" and lam is None:
            self.error(
                ("routes", name, "strategy", "rule"),
                f"rule score_minus_cost needs a lambda, and router file {strategy.router!r} "
                "has none calibrated",
                "set lambda: (score points per USD) here, or retrain the router with this "
                "version of modelroute train",
            )
        return c.LearnedRule(
            path=strategy.router,
            file=loaded.file,
            file_hash=loaded.file_hash,
            kind=loaded.kind,
            threshold=loaded.threshold if threshold is None else threshold,
            threshold_source="calibrated" if threshold is None else "policy",
            target=loaded.target,
            scorer=loaded.scorer,
            rule=strategy.rule,
            lam=lam,
            lambda_source=None
            if lam is None
            else ("policy" if strategy.lambda_ is not None else "calibrated"),
        )

    def shadow(self, name: str, spec: Shadow | None) -> c.ShadowRule | None:
        if spec is None:
            return None
        path: Path = ("routes", name, "shadow")
        seen: set[str] = set()
        for i, model in enumerate(spec.models):
            self.check_ref((*path, "models", i), model)
            if model in seen:
                self.error((*path, "models", i), f"shadow model {model!r} is listed twice")
            seen.add(model)
        judge = None if spec.judge == "agreement" else spec.judge
        if judge is not None and judge not in self.spec.models:
            self.error(
                (*path, "judge"),
                f"shadow judge {judge!r} is neither 'agreement' nor a model of this policy",
                _suggest(judge, [*self.spec.models, "agreement"])
                or "judge: agreement (normalised exact match), or a model from models: "
                + ", ".join(self.spec.models),
            )
        return c.ShadowRule(tuple(spec.models), spec.sample, judge, spec.max_usd_per_day)

    def match(self, name: str, spec: RouteSpec) -> c.MatchRule | None:
        m = spec.match
        if m is None:
            return None
        lo, hi = m.min_prompt_tokens, m.max_prompt_tokens
        if lo is not None and hi is not None and lo > hi:
            self.error(
                ("routes", name, "match", "min_prompt_tokens"),
                f"min_prompt_tokens {lo} is above max_prompt_tokens {hi}",
            )
        return c.MatchRule(
            models=frozenset(m.model),
            tasks=frozenset(m.task),
            metadata=tuple((k, frozenset(v)) for k, v in m.metadata.items()),
            min_prompt_tokens=lo,
            max_prompt_tokens=hi,
            tools=m.tools,
            images=m.images,
        )

    def names(self, routes: dict[str, c.Route]) -> dict[str, c.Route]:
        names: dict[str, c.Route] = dict(routes)
        for name, route in routes.items():
            for i, alias in enumerate(route.aliases):
                path: Path = ("routes", name, "aliases", i)
                if alias in names and names[alias] is not route:
                    self.error(
                        path,
                        f"alias {alias!r} is already the name or alias of route "
                        f"{names[alias].name!r}",
                        "names must be unique across routes",
                    )
                elif alias in self.spec.models:
                    self.error(
                        path,
                        f"alias {alias!r} is also a model name",
                        "a request naming it would be ambiguous; rename one",
                    )
                names[alias] = route
            if name in self.spec.models:
                self.error(
                    ("routes", name),
                    f"route {name!r} has the same name as a model",
                    "a request naming it would be ambiguous; rename one",
                )
        return names


def _policy_hash(
    spec: PolicySpec, models: dict[str, c.Model], routers: Mapping[str, LoadedRouter]
) -> str:
    """Content hash: the declared policy plus the prices it resolved to (the label excluded)
    and the bytes of any trained router file it names."""
    body = spec.model_dump(mode="json", exclude={"version"})
    # max_attempts once counted retries only: hashed in that unit, a policy whose behaviour
    # did not change keeps its hash, and one whose behaviour did gets a new one.
    for retries in [body["defaults"]["retries"], *(r["retries"] for r in body["routes"].values())]:
        if retries is not None:
            retries["max_attempts"] -= 1
    if spec.defaults.circuit_breaker == CircuitBreaker():  # unused: no change to the hash
        del body["defaults"]["circuit_breaker"]
    for model in body["models"].values():
        if model["circuit_breaker"] is None:
            del model["circuit_breaker"]
    for model in body["models"].values():
        # Options added after a policy was written must not change its hash while unused:
        # records made before and after an upgrade stay comparable.
        for option in ("drop_params", "forward_metadata", "rate_limit"):
            if not model[option]:
                del model[option]
    if spec.defaults.quality.compare == QualityCompare.MEAN:  # the default: hashed as before
        del body["defaults"]["quality"]["compare"]
    if body["defaults"]["quality"] == {"min_samples": QualitySettings().min_samples}:
        del body["defaults"]["quality"]
    for route in body["routes"].values():
        # added later: unused, no change to the hash
        for option in ("quality", "shadow", "rate_limit", "budget", "cache", "affinity"):
            if route[option] is None:
                del route[option]
        if route["on_budget"] == OnBudget.REJECT.value:
            del route["on_budget"]
    body["resolved_prices"] = {
        name: [m.prices.input, m.prices.output, m.prices.cached_input, m.prices.cache_write]
        for name, m in models.items()
    }
    if routers:  # a retrained router is a new policy, even at the same path
        body["router_files"] = {name: r.file_hash for name, r in routers.items()}
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _routing_metadata(spec: PolicySpec) -> frozenset[str]:
    """Every metadata key routing reads: the fixed ones and those any route matches on."""
    matched = {key for route in spec.routes.values() if route.match for key in route.match.metadata}
    return ROUTING_METADATA_KEYS | matched


def _direct_route(spec: PolicySpec, model: c.Model) -> c.Route:
    """A request naming a model: feasibility is still checked; no route's limits apply."""
    d = spec.defaults
    return c.Route(
        name=model.name,
        aliases=(),
        match=None,
        max_latency_ms=None,
        max_cost_usd=None,
        min_quality=None,
        objective="declared_order",
        strategy="direct",
        tiers=((model.name,),),
        fallbacks=(),
        retries=c.RetryPolicy(
            d.retries.max_attempts,
            d.retries.backoff_ms,
            d.retries.max_backoff_ms,
            frozenset(x.value for x in d.retries.on),
        ),
        timeouts=c.TimeoutPolicy(d.timeouts.attempt_ms, d.timeouts.total_ms),
        output_tokens=d.output_tokens,
        max_ejection_percent=d.circuit_breaker.max_ejection_percent,
        on_infeasible="reject",
        confidence=None,
        hedge_after_ms=None,
        scorer=None,
        min_quality_samples=d.quality.min_samples,
        entries=(c.entry(0, model, False, True, model.name),),
        quality_compare=d.quality.compare.value,  # a request may still set min_quality
    )


def build_policy(
    spec: PolicySpec,
    source: Source,
    provider_kinds: Collection[str],
    routers: Mapping[str, LoadedRouter] | None = None,
) -> tuple[c.Policy | None, list[Problem]]:
    """``provider_kinds``: the kinds a model's ``provider:`` may name (built-in, installed,
    or passed in code; the caller knows which). ``routers``: each learned route's router
    file, read by the loader."""
    routers = routers or {}
    b = _Builder(spec, source, provider_kinds, routers)
    models = {}
    routing_metadata = _routing_metadata(spec)
    for name, model_spec in spec.models.items():
        model = b.model(name, model_spec, routing_metadata)
        if model is not None:
            models[name] = model
    routes = {name: b.route(name, route, models) for name, route in spec.routes.items()}
    names = b.names(routes)
    default = spec.defaults.route
    if default is not None and default not in names:
        b.error(
            ("defaults", "route"),
            f"default route {default!r} is not a route",
            _suggest(default, names),
        )
    for name, model_spec in spec.models.items():
        for task in model_spec.quality:
            if task not in names:
                b.warn(
                    ("models", name, "quality", task),
                    f"quality prior for {task!r}, which is not a route or alias",
                    _suggest(task, names),
                )
    if any(p.severity == "error" for p in b.problems):
        return None, b.problems
    policy = c.Policy(
        models=c.frozen_map(models),
        routes=c.frozen_map(routes),
        names=c.frozen_map(names),
        direct=c.frozen_map({name: _direct_route(spec, m) for name, m in models.items()}),
        matchers=tuple(r for r in routes.values() if r.match is not None),
        default_route=default if default is None else names[default].name,
        hash=_policy_hash(spec, models, routers),
        version=spec.version,
        source=source.file,
        warnings=tuple(b.problems),
        simulator=None
        if spec.simulator is None
        else (spec.simulator.config, spec.simulator.host, spec.simulator.port),
    )
    return policy, b.problems


def _rate_rule(spec: RateLimit | ModelRateLimit | None) -> c.RateRule | None:
    if spec is None:
        return None
    return c.RateRule(
        spec.requests_per_minute,
        spec.tokens_per_minute,
        spec.per.value,
        spec.when_state_down is WhenStateDown.OPEN,
    )


def _budget_rule(spec: RouteSpec) -> c.BudgetRule | None:
    b = spec.budget
    if b is None:
        return None
    open_ = b.when_state_down is WhenStateDown.OPEN
    return c.BudgetRule(b.usd, b.period.value, b.per.value, spec.on_budget.value, open_)


def _affinity_rule(spec: RouteSpec) -> c.AffinityRule | None:
    a = spec.affinity
    if a is None or a == AffinityMode.NONE:
        return None
    if isinstance(a, AffinityMode):
        a = AffinitySpec(mode=a)
    if a.mode == AffinityMode.NONE:
        return None
    return c.AffinityRule(a.mode.value, a.margin, a.ttl, a.max_sessions)
