"""Prices per million tokens and the cost of a request.

Defaults come from the ``genai-prices`` package (its bundled data; never fetched at run time),
and the policy's explicit values win field by field. An unknown price is never silently zero:
``lookup_prices`` returns ``None`` and the policy loader reports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

_PROVIDER_IDS = {"openai": "openai", "anthropic": "anthropic"}

# Well-known public endpoints; any other base_url is looked up by genai-prices' URL matching.
_OFFICIAL_URLS = ("api.openai.com", "api.anthropic.com")


@dataclass(frozen=True, slots=True)
class PriceTable:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float
    cache_write: float
    source: str  # "policy", "genai-prices" or "policy+genai-prices"

    def estimate(self, prompt_tokens: int, output_tokens: int) -> float:
        return (prompt_tokens * self.input + output_tokens * self.output) / 1_000_000


def _per_mtok(value: Any) -> float | None:
    """genai-prices gives a Decimal or a tiered price; the base tier is the list price."""
    if value is None:
        return None
    if isinstance(value, Decimal | int | float):
        return float(value)
    base = getattr(value, "base", None)
    return float(base) if base is not None else None


def lookup_prices(provider: str, model_id: str, base_url: str) -> dict[str, float | None] | None:
    """Published prices for a provider's model id, or ``None`` when genai-prices has none."""
    from genai_prices import Usage, calc_price  # imported lazily: its data loads on first use

    kwargs: dict[str, Any] = {}
    if provider in _PROVIDER_IDS and any(host in base_url for host in _OFFICIAL_URLS):
        kwargs["provider_id"] = _PROVIDER_IDS[provider]
    elif provider in _PROVIDER_IDS:
        kwargs["provider_api_url"] = base_url
    else:
        return None
    try:
        found = calc_price(Usage(input_tokens=0, output_tokens=0), model_id, **kwargs)
    except LookupError:
        return None
    price = found.model_price
    return {
        "input": _per_mtok(getattr(price, "input_mtok", None)),
        "output": _per_mtok(getattr(price, "output_mtok", None)),
        "cached_input": _per_mtok(getattr(price, "cache_read_mtok", None)),
        "cache_write": _per_mtok(getattr(price, "cache_write_mtok", None)),
    }


def merge_prices(declared: dict[str, float | None],
                 published: dict[str, float | None] | None) -> PriceTable | None:
    """Explicit policy values win; published ones fill the gaps. ``None`` if input/output unknown."""
    merged: dict[str, float | None] = dict(published or {})
    used_policy = False
    for key, value in declared.items():
        if value is not None:
            merged[key] = value
            used_policy = True
    inp, out = merged.get("input"), merged.get("output")
    if inp is None or out is None:
        return None
    if published is None:
        source = "policy"
    else:
        source = "policy+genai-prices" if used_policy else "genai-prices"
    cached = merged.get("cached_input")
    write = merged.get("cache_write")
    return PriceTable(
        input=inp,
        output=out,
        cached_input=inp if cached is None else cached,
        cache_write=inp if write is None else write,
        source=source,
    )
