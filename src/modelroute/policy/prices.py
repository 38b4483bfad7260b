"""Published prices from the ``genai-prices`` package: its bundled data, never fetched."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

_PROVIDER_IDS = {"openai": "openai", "anthropic": "anthropic"}

# Well-known public endpoints; any other base_url is looked up by genai-prices' URL matching.
_OFFICIAL_URLS = ("api.openai.com", "api.anthropic.com")


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
    return _table(found.model_price)


def _table(price: Any) -> dict[str, float | None]:
    return {
        "input": _per_mtok(getattr(price, "input_mtok", None)),
        "output": _per_mtok(getattr(price, "output_mtok", None)),
        "cached_input": _per_mtok(getattr(price, "cache_read_mtok", None)),
        "cache_write": _per_mtok(getattr(price, "cache_write_mtok", None)),
    }


def lookup_model_prices(model_id: str) -> dict[str, float | None] | None:
    """Published prices for a model id alone (its provider inferred from the id), for logs
    that name the model but not where it ran; ``None`` when genai-prices has none."""
    from genai_prices import Usage, calc_price

    try:
        found = calc_price(Usage(input_tokens=0, output_tokens=0), model_id)
    except LookupError:
        return None
    return _table(found.model_price)
