"""A compiled policy's content hash: stored on every record, so two records are comparable
when their hashes are equal. Options added after a policy was written are left out while
unused, so an upgrade alone changes no policy's hash."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import TYPE_CHECKING

import orjson

from modelroute.policy import compiled as c
from modelroute.policy.schema import (
    CircuitBreaker,
    OnBudget,
    PolicySpec,
    QualityCompare,
    QualitySettings,
)

if TYPE_CHECKING:
    from modelroute.learned.format import LoadedRouter


def policy_hash(
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
