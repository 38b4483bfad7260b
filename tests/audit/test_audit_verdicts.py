"""When a model meets a task's threshold (the interval's lower bound clears it, on enough
outcomes), when it is below, and when there is not enough evidence; and the savings'
interval from days of re-priced usage."""

from __future__ import annotations

import numpy as np
import pytest

from modelroute.analysis.audit_quality import Quality
from modelroute.analysis.audit_savings import DAY_S, MONTH_S, savings
from modelroute.analysis.audit_sql import Bucket, Usage
from modelroute.pricing import PriceTable

T0 = 1_760_000_000.0


def rows(key: str, model: str, correct: int, n: int, version: str = "v1") -> list[tuple]:
    return [(key, model, version, "shadow", 1.0 if i < correct else 0.0, T0 + i) for i in range(n)]


def test_the_lower_bound_decides() -> None:
    task_rows = rows("t", "clear", 98, 100) + rows("t", "straddles", 90, 100)
    task_rows += rows("t", "below", 50, 100) + rows("t", "thin", 10, 10)
    quality = Quality(task_rows, [], min_samples=30)
    verdict = {m: quality.evidence("t", "r", m, 0.85) for m in ("clear", "straddles", "below")}
    assert verdict["clear"].verdict == "meets"
    assert verdict["clear"].found is not None and verdict["clear"].found.interval.low >= 0.85
    # 0.90 measured, but its interval reaches below 0.85: more outcomes would settle it
    straddles = verdict["straddles"]
    assert straddles.verdict == "not_enough" and straddles.needed > 100
    assert verdict["below"].verdict == "below"
    thin = quality.evidence("t", "r", "thin", 0.85)
    assert thin.verdict == "not_enough" and thin.found is not None and thin.found.n == 10
    none = quality.evidence("t", "r", "unmeasured", 0.85)
    assert (none.verdict, none.found, none.needed) == ("not_enough", None, 30)


def test_the_task_s_own_outcomes_first_then_the_route_s() -> None:
    quality = Quality(rows("t", "m", 5, 10), rows("r", "m", 100, 100), min_samples=30)
    found = quality.evidence("t", "r", "m", 0.9)
    assert (found.verdict, found.scope) == ("meets", "route")  # the task's 10 are too few
    quality = Quality(rows("t", "m", 20, 40), rows("r", "m", 100, 100), min_samples=30)
    assert quality.evidence("t", "r", "m", 0.9).verdict == "below"  # its own 40 count


def test_only_the_current_version_counts() -> None:
    old = rows("t", "m", 100, 100, version="m-2024")
    new = [(k, m, "m-2025", s, sc, at + 1000) for k, m, _, s, sc, at in rows("t", "m", 5, 5)]
    quality = Quality(old + new, [], min_samples=30)
    found = quality.evidence("t", "r", "m", 0.9)
    assert found.verdict == "not_enough" and found.found is not None
    assert found.found.version == "m-2025" and found.found.n == 5


def test_savings_are_re_priced_usage_with_an_interval_over_days() -> None:
    cheap = PriceTable(input=0.1, output=0.2, cached_input=None, cache_write=None, source="t")
    rng = np.random.default_rng(1)
    daily = [int(n) for n in rng.integers(800, 1200, 30)]
    buckets = [
        # each request: 1000 input and 100 output tokens, which cost 0.01 USD as served
        Bucket("t", "big", "r", day, Usage(n, n, n * 0.01, n * 1000, n * 100, 0, 0))
        for day, n in enumerate(daily)
    ]
    found = savings(buckets, {("t", "big", "r"): cheap}, 0, 29, DAY_S)
    per_request = 0.01 - (1000 * 0.1 + 100 * 0.2) / 1e6
    assert found.monthly_usd == pytest.approx(float(np.mean(daily)) * per_request * MONTH_S / DAY_S)
    assert found.low_usd < found.monthly_usd < found.high_usd
    assert found.buckets == 30 and found.requests == sum(daily)
    # a model not moved saves nothing
    assert savings(buckets, {}, 0, 29, DAY_S).monthly_usd == 0.0
