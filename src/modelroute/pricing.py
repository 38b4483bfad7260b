"""Prices per million tokens and the cost of a request.

Defaults come from the ``genai-prices`` package (see ``policy/prices.py``), and the policy's
explicit values win field by field. An unknown price is never silently zero: the policy loader
reports it. This module is pure arithmetic, safe for the planner to import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from modelroute.types import Usage


@dataclass(frozen=True, slots=True)
class PriceTable:
    """USD per million tokens."""

    input: float
    output: float
    cached_input: float | None  # None: not published and not declared
    cache_write: float | None
    source: str  # "policy", "genai-prices" or "policy+genai-prices"

    def estimate(self, prompt_tokens: int, output_tokens: int) -> float:
        return (prompt_tokens * self.input + output_tokens * self.output) / 1_000_000


def merge_prices(
    declared: dict[str, float | None], published: dict[str, float | None] | None
) -> PriceTable | None:
    """Explicit policy values win; published ones fill gaps. ``None``: input/output unknown."""
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
        cached_input=cached,
        cache_write=write,
        source=source,
    )


@dataclass(frozen=True, slots=True)
class Cost:
    usd: float
    known: bool  # False: some tokens had no known price (billed at the input rate, flagged)


def cost_of(usage: Usage | None, prices: PriceTable) -> Cost:
    """What a request cost, from the provider's reported usage.

    Cached input and cache writes are billed at their own rates; the rest of the input at the
    input rate. Reasoning tokens are part of ``output_tokens`` and billed as output. A usage
    the prices cannot fully cover (no usage reported; cached or cache-write tokens without a
    known rate) is flagged ``known=False`` rather than silently priced at zero: unknown rates
    are charged at the input rate, an upper bound for every published cache discount.
    """
    if usage is None:
        return Cost(0.0, False)
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    written = min(usage.cache_write_tokens, usage.input_tokens - cached)
    plain = usage.input_tokens - cached - written
    known = True
    cached_rate, write_rate = prices.cached_input, prices.cache_write
    if cached and cached_rate is None:
        cached_rate, known = prices.input, False
    if written and write_rate is None:
        write_rate, known = prices.input, False
    usd = (
        plain * prices.input
        + cached * (cached_rate or 0.0)
        + written * (write_rate or 0.0)
        + usage.output_tokens * prices.output
    ) / 1_000_000
    return Cost(usd, known)


def cost_usd(usage: Usage, prices: PriceTable) -> float:
    return cost_of(usage, prices).usd


# -- money as text ------------------------------------------------------------------------------

_MAX_SIGNIFICANT = 12


def usd(value: float, significant: int = 3) -> str:
    """``value`` dollars as text with at least ``significant`` significant digits and at
    least cents: ``$0.0601``, ``$0.000450``, ``$0.000000123``, ``$12.50``. Sub-cent costs
    are the common case (one request), so a fixed number of decimals would print them as
    ``$0.0000``."""
    if value == 0 or not math.isfinite(value):
        return f"${value:.2f}"
    magnitude = math.floor(math.log10(abs(value)))
    text = f"{abs(value):.{max(significant - 1 - magnitude, 2)}f}"
    return f"-${text}" if value < 0 else f"${text}"


def usd_pair(value: float, limit: float) -> tuple[str, str]:
    """Two amounts compared in one message, with digits enough to tell them apart."""
    for significant in range(3, _MAX_SIGNIFICANT + 1):
        pair = usd(value, significant), usd(limit, significant)
        if pair[0] != pair[1] or value == limit:
            return pair
    return usd(value, _MAX_SIGNIFICANT), usd(limit, _MAX_SIGNIFICANT)
