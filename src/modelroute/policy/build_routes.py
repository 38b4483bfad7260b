"""A route's entry, compiled: the models it names, its strategy's settings (a cascade's
confidence signal, a learned route's router file), shadow, match rules, and names and aliases
unique across routes and models."""

from __future__ import annotations

import re

from modelroute.policy import compiled as c
from modelroute.policy.build_checks import Checks, suggest
from modelroute.policy.rules import (
    affinity_rule,
    budget_rule,
    rate_rule,
    retry_policy,
    timeout_policy,
)
from modelroute.policy.schema import (
    DEFAULT_SIMILARITY,
    CacheMode,
    CascadeStrategy,
    CheapestQualifiedStrategy,
    FixedStrategy,
    LearnedStrategy,
    Objective,
    RouteSpec,
    Shadow,
)
from modelroute.policy.source import Path


class RouteChecks(Checks):
    """The checks of the ``routes:`` section, against the models the policy declares."""

    def check_ref(self, path: Path, name: str) -> None:
        if name not in self.spec.models:
            route = path[1]
            hint = suggest(name, self.spec.models) or "models: " + ", ".join(self.spec.models)
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
            retries=retry_policy(spec.retries or defaults.retries),
            timeouts=timeout_policy(spec.timeouts or defaults.timeouts),
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
            rate_limit=rate_rule(spec.rate_limit),
            budget=budget_rule(spec),
            cache=self.cache(name, spec),
            affinity=affinity_rule(spec),
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

    def cache(self, name: str, spec: RouteSpec) -> c.CacheRule | None:
        rule = spec.cache
        if rule is None:
            return None
        similarity = rule.similarity
        if rule.mode is CacheMode.SEMANTIC:
            similarity = DEFAULT_SIMILARITY if similarity is None else similarity
        elif similarity is not None:
            self.error(
                ("routes", name, "cache", "similarity"),
                "similarity applies to semantic caching only",
                "add 'mode: semantic' to the cache, or remove 'similarity'",
            )
        return c.CacheRule(rule.ttl, rule.allow_sampling, similarity)

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
                suggest(judge, [*self.spec.models, "agreement"])
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
