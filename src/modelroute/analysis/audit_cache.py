"""What the response cache saved: the requests answered from it in the audited window and what
their answers cost when they were made (each hit's ``cache_saved_usd``), projected per month
like the audit's recoverable spend (the mean per time bucket times the buckets in a month, with
a 95% percentile-bootstrap interval over the buckets; buckets without hits count as zero).

Hits are read from the record body (``cache_hit``, ``cache_saved_usd``), among the answered
requests that cost nothing (a hit costs 0): the ``(status, started_at)`` index narrows the
scan to the window's answered requests, and the body is read only for those at cost 0.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from modelroute.analysis.audit_savings import DAY_S, monthly
from modelroute.records.stores.base import Store
from modelroute.records.stores.body import BODY_FIELDS

_HIT = BODY_FIELDS.index("cache_hit")
_SAVED = BODY_FIELDS.index("cache_saved_usd")


@dataclass(frozen=True, slots=True)
class CacheSavings:
    hits: int
    saved_usd: float  # in the window
    monthly_usd: float
    low_usd: float
    high_usd: float
    buckets: int
    bucket_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "hits": self.hits,
            "saved_usd": self.saved_usd,
            "monthly_usd": self.monthly_usd,
            "low_usd": self.low_usd,
            "high_usd": self.high_usd,
            "confidence": 0.95,
            "method": "percentile bootstrap over time buckets",
            "buckets": self.buckets,
            "bucket": "day" if self.bucket_s == DAY_S else "hour",
        }

    def describe(self) -> str:
        from modelroute.pricing import usd

        if not self.hits:
            return "response cache: no hits in the window"
        unit = "days" if self.bucket_s == DAY_S else "hours"
        return (
            f"response cache: {self.hits:,} hits saved {usd(self.saved_usd)} in the window; "
            f"{usd(self.monthly_usd)}/month ({usd(self.low_usd)} to {usd(self.high_usd)}, "
            f"95% interval over {self.buckets} {unit})"
        )


def _sql(store: Store) -> str:
    if store.dialect == "sqlite":
        hit, saved = f"json_extract(body, '$[{_HIT}]') = 1", f"json_extract(body, '$[{_SAVED}]')"
        bucket = "CAST(started_at / ?3 AS INTEGER)"
        since, now = "?1", "?2"
    else:
        hit = f"(body -> {_HIT}) = 'true'::jsonb"
        saved = f"(body ->> {_SAVED})::double precision"
        bucket = "floor(started_at / $3)::bigint"
        since, now = "$1", "$2"
    return (
        f"SELECT {bucket} AS bucket, COUNT(*), COALESCE(SUM({saved}), 0) FROM requests "
        f"WHERE status = 'ok' AND started_at >= {since} AND started_at <= {now} "
        f"AND cost_usd = 0 AND {hit} GROUP BY bucket"
    )


async def cache_savings(
    store: Store, since: float, now: float, start: float, bucket_s: float
) -> CacheSavings:
    """Hits from ``since`` to ``now``; buckets counted from ``start`` (the first record)."""
    rows = await store.read_sql(_sql(store), [since, now, bucket_s])
    first, last = int(start // bucket_s), int(now // bucket_s)
    span = max(1, last - first + 1)
    saved = np.zeros(span)
    hits = 0
    for bucket, count, usd in rows:
        if first <= int(bucket) <= last:
            saved[int(bucket) - first] += float(usd)
            hits += int(count)
    mean, low, high = monthly(saved, bucket_s)
    return CacheSavings(hits, float(saved.sum()), mean, low, high, span, bucket_s)
