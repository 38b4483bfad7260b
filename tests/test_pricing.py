"""Cost from reported usage: published prices, cached, cache-write and reasoning tokens."""

from __future__ import annotations

from decimal import Decimal

import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price

from modelroute import load_policy_text
from modelroute.pricing import PriceTable, cost_of
from modelroute.types import Usage

POLICY = """
models:
  gpt-4o: {provider: openai, base_url: https://api.openai.com/v1, model_id: gpt-4o-2024-08-06,
           context_window: 128000, latency: {p50_ms: 1, p95_ms: 2}}
  o1: {provider: openai, base_url: https://api.openai.com/v1, model_id: o1-2024-12-17,
       context_window: 200000, latency: {p50_ms: 1, p95_ms: 2}}
  sonnet: {provider: anthropic, base_url: https://api.anthropic.com,
           model_id: claude-3-5-sonnet-20241022, context_window: 200000,
           latency: {p50_ms: 1, p95_ms: 2}}
  local: {provider: openai, base_url: http://127.0.0.1:8000/v1, model_id: m-2024-01-01,
          prices: {input: 1, output: 2}, context_window: 8000, latency: {p50_ms: 1, p95_ms: 2}}
routes:
  r: {strategy: {kind: fixed, models: [gpt-4o]}}
"""


@pytest.fixture(scope="module")
def prices() -> dict[str, PriceTable]:
    policy = load_policy_text(POLICY)
    return {name: m.prices for name, m in policy.models.items()}


def test_openai_cached_input(prices: dict[str, PriceTable]) -> None:
    # gpt-4o: $2.50 input, $1.25 cached input, $10 output per million tokens.
    usage = Usage(input_tokens=10_000, cached_input_tokens=6_000, output_tokens=500)
    cost = cost_of(usage, prices["gpt-4o"])
    assert cost.known
    assert cost.usd == pytest.approx((4_000 * 2.5 + 6_000 * 1.25 + 500 * 10) / 1e6)
    assert cost.usd == pytest.approx(0.0225)


def test_openai_reasoning_tokens_are_billed_as_output(prices: dict[str, PriceTable]) -> None:
    # o1: $15 input, $60 output; completion_tokens (1,000) include 800 reasoning tokens.
    usage = Usage(input_tokens=2_000, output_tokens=1_000, reasoning_tokens=800)
    cost = cost_of(usage, prices["o1"])
    assert cost.usd == pytest.approx((2_000 * 15 + 1_000 * 60) / 1e6)  # $0.09


def test_anthropic_cache_read_and_write(prices: dict[str, PriceTable]) -> None:
    # Sonnet 3.5: $3 input, $3.75 cache write, $0.30 cache read, $15 output. Anthropic reports
    # input_tokens=1,000 uncached + cache_creation 2,000 + cache_read 5,000; we hold the total.
    usage = Usage(
        input_tokens=8_000, cache_write_tokens=2_000, cached_input_tokens=5_000, output_tokens=300
    )
    cost = cost_of(usage, prices["sonnet"])
    assert cost.known
    assert cost.usd == pytest.approx((1_000 * 3 + 2_000 * 3.75 + 5_000 * 0.3 + 300 * 15) / 1e6)


@pytest.mark.parametrize(
    ("model", "provider", "model_id", "usage", "genai_usage"),
    [
        (
            "gpt-4o",
            "openai",
            "gpt-4o-2024-08-06",
            Usage(input_tokens=10_000, cached_input_tokens=6_000, output_tokens=500),
            GenaiUsage(input_tokens=10_000, cache_read_tokens=6_000, output_tokens=500),
        ),
        (
            "sonnet",
            "anthropic",
            "claude-3-5-sonnet-20241022",
            Usage(
                input_tokens=8_000,
                cache_write_tokens=2_000,
                cached_input_tokens=5_000,
                output_tokens=300,
            ),
            GenaiUsage(
                input_tokens=8_000,
                cache_write_tokens=2_000,
                cache_read_tokens=5_000,
                output_tokens=300,
            ),
        ),
    ],
)
def test_agrees_with_genai_prices(
    prices: dict[str, PriceTable],
    model: str,
    provider: str,
    model_id: str,
    usage: Usage,
    genai_usage: GenaiUsage,
) -> None:
    reference = calc_price(genai_usage, model_id, provider_id=provider).total_price
    assert Decimal(str(round(cost_of(usage, prices[model]).usd, 10))) == pytest.approx(reference)


def test_unknown_rates_are_flagged_never_zero(prices: dict[str, PriceTable]) -> None:
    local = prices["local"]  # declared input/output only
    assert local.cached_input is None and local.cache_write is None
    usage = Usage(input_tokens=1_000, cached_input_tokens=400, output_tokens=10)
    cost = cost_of(usage, local)
    assert not cost.known
    assert cost.usd == pytest.approx((1_000 * 1 + 10 * 2) / 1e6)  # cached billed at input rate
    missing = cost_of(None, local)
    assert not missing.known and missing.usd == 0.0
    assert cost_of(Usage(input_tokens=100, output_tokens=5), local).known
