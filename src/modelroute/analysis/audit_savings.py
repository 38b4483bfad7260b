"""What moving over-provisioned requests to the cheapest qualified model would save.

Each over-provisioned request's recorded usage (input, cached input, cache-write and output
tokens, summed over its answered attempts) is priced at the cheaper model's prices and
compared with what it cost. The projection is per month (30 days): the mean saving per time
bucket (a day, or an hour when the audited window is shorter than a week) times the buckets
in a month, with a 95% percentile-bootstrap interval over the buckets (``scipy.stats``,
seeded), buckets without such requests counted as zero. It is a re-pricing, not a
simulation: the cheaper model would answer with its own number of output tokens, and a
cascade's or a fallback's extra attempts are priced as if the cheaper model had made them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import stats

from modelroute.analysis.audit_sql import Bucket, Usage
from modelroute.pricing import PriceTable, cost_of
from modelroute.types import Usage as TokenUsage

MONTH_S = 30 * 86_400.0
DAY_S = 86_400.0
HOUR_S = 3_600.0
_SEED = 20241206
_RESAMPLES = 2000


def bucket_seconds(first_at: float | None, last_at: float | None) -> float:
    """Days, unless the window is shorter than a week (then hours: enough buckets)."""
    if first_at is None or last_at is None or last_at - first_at >= 7 * DAY_S:
        return DAY_S
    return HOUR_S


def repriced(usage: Usage, prices: PriceTable) -> float:
    """The cost of ``usage`` at ``prices`` (USD)."""
    tokens = TokenUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        cached_input_tokens=usage.cached_input_tokens,
        cache_write_tokens=usage.cache_write_tokens,
    )
    return cost_of(tokens, prices).usd


@dataclass(frozen=True, slots=True)
class Savings:
    monthly_usd: float
    low_usd: float
    high_usd: float
    buckets: int  # how many time buckets the interval rests on
    bucket_s: float
    requests: int  # over-provisioned requests behind it

    def to_dict(self) -> dict[str, Any]:
        return {
            "monthly_usd": self.monthly_usd,
            "low_usd": self.low_usd,
            "high_usd": self.high_usd,
            "confidence": 0.95,
            "method": "percentile bootstrap over time buckets",
            "buckets": self.buckets,
            "bucket": "day" if self.bucket_s == DAY_S else "hour",
            "requests": self.requests,
        }


def savings(
    buckets: Iterable[Bucket],
    moves: Mapping[tuple[str, str, str | None], PriceTable],
    first_bucket: int,
    last_bucket: int,
    bucket_s: float,
) -> Savings:
    """``moves``: (task key, serving model, decision reason) -> the prices of the model those
    requests would move to."""
    span = max(1, last_bucket - first_bucket + 1)
    saved = np.zeros(span)
    requests = 0
    for b in buckets:
        prices = moves.get((b.task_key, b.model, b.reason))
        if prices is None or not first_bucket <= b.bucket <= last_bucket:
            continue
        saved[b.bucket - first_bucket] += b.usage.spend_usd - repriced(b.usage, prices)
        requests += b.usage.requests
    mean, low, high = monthly(saved, bucket_s)
    return Savings(mean, low, high, span, bucket_s, requests)


def monthly(saved: np.ndarray, bucket_s: float) -> tuple[float, float, float]:
    """Per month (30 days): the mean of ``saved`` per bucket times the buckets in a month,
    and its 95% percentile-bootstrap interval over the buckets (seeded)."""
    per_month = MONTH_S / bucket_s
    mean = float(saved.mean()) * per_month
    if len(saved) < 2 or float(saved.min()) == float(saved.max()):
        return mean, mean, mean
    result = stats.bootstrap(
        (saved,),
        np.mean,
        confidence_level=0.95,
        n_resamples=_RESAMPLES,
        method="percentile",
        vectorized=True,
        rng=np.random.default_rng(_SEED),
    )
    low, high = result.confidence_interval
    return mean, float(low) * per_month, float(high) * per_month
