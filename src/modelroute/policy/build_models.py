"""A model's entry, compiled: provider kind, version pinning, prices, circuit breaker."""

from __future__ import annotations

import re

from modelroute.policy import compiled as c
from modelroute.policy.build_checks import Checks, suggest
from modelroute.policy.prices import lookup_prices
from modelroute.policy.rules import rate_rule
from modelroute.policy.schema import ModelSpec
from modelroute.policy.source import Path
from modelroute.pricing import PriceTable, merge_prices

# A provider id is pinned when it carries a date or a numbered snapshot: gpt-4o-2024-08-06,
# claude-3-5-haiku-20241022, gpt-3.5-turbo-0125, gemini-1.5-pro-002, or an explicit tag.
_PINNED = re.compile(r"(\d{4}-\d{2}-\d{2}|\d{8}|-\d{3,4}$|@[\w.-]+$|:[\w.-]+$|-v\d+(\.\d+)*$)")


def is_pinned(model_id: str) -> bool:
    return "latest" not in model_id and bool(_PINNED.search(model_id))


class ModelChecks(Checks):
    """The checks and lookups of the ``models:`` section."""

    def model(self, name: str, spec: ModelSpec, routing_metadata: frozenset[str]) -> c.Model | None:
        path: Path = ("models", name)
        if spec.provider not in self.provider_kinds:
            hint = suggest(spec.provider, self.provider_kinds)
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
            rate_limit=rate_rule(spec.rate_limit),
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
