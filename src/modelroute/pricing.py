"""Prices per million tokens and the cost of a request.

Defaults come from the ``genai-prices`` package (see ``policy/prices.py``), and the policy's
explicit values win field by field. An unknown price is never silently zero: the policy loader
reports it. This module is pure arithmetic, safe for the planner to import.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelroute.types import Usage


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
        cached_input=inp if cached is None else cached,
        cache_write=inp if write is None else write,
        source=source,
    )


def cost_usd(usage: Usage, prices: PriceTable) -> float:
    """What a request cost, from the provider's reported usage.

    Cached input and cache writes are billed at their own rates; the rest of the input at the
    input rate. Reasoning tokens are part of ``output_tokens`` and billed as output.
    """
    cached = min(usage.cached_input_tokens, usage.input_tokens)
    written = min(usage.cache_write_tokens, usage.input_tokens - cached)
    plain = usage.input_tokens - cached - written
    return (
        plain * prices.input
        + cached * prices.cached_input
        + written * prices.cache_write
        + usage.output_tokens * prices.output
    ) / 1_000_000
