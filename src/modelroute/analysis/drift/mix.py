"""Task-mix shift: what the traffic asks for, against the baseline.

Three views of the same requests: the distribution of prompt sizes (the planner's token
count; a random sample of each window, Kolmogorov-Smirnov), and the shares of tasks and of
routes (every request counted, chi-squared, with the population stability index as the
effect). Requests without a task count as the task "(none)", and without a route as the
route "(none)".
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np

from modelroute.analysis.drift import queries, significance
from modelroute.analysis.drift.findings import Finding, not_enough
from modelroute.analysis.drift.settings import Thresholds, Windows
from modelroute.records.stores.base import Store

NONE = "(none)"


def shares(rows: Iterable[queries.GroupRow], by: str) -> tuple[Counter[str], Counter[str]]:
    """Requests per task or route: current and baseline."""
    current: Counter[str] = Counter()
    baseline: Counter[str] = Counter()
    for r in rows:
        name = getattr(r, by) or NONE
        current[name] += r.n_current
        baseline[name] += r.n_baseline
    return current, baseline


def share_finding(
    kind: str, current: Counter[str], baseline: Counter[str], t: Thresholds
) -> Finding:
    n, base_n = sum(current.values()), sum(baseline.values())
    if n < t.min_requests or base_n < t.min_requests:
        return not_enough(kind, {}, n, base_n, t.min_requests)
    tested, psi = significance.shares_moved(current, baseline)
    moved = sorted(
        set(current) | set(baseline),
        key=lambda k: -abs(current[k] / n - baseline[k] / base_n),
    )[:3]
    changes = ", ".join(f"{k} {baseline[k] / base_n:.0%} -> {current[k] / n:.0%}" for k in moved)
    return Finding(
        kind,
        {},
        f"population stability index {psi:.3f}; largest changes: {changes}",
        n_current=n,
        n_baseline=base_n,
        test=tested.test,
        statistic=tested.statistic,
        p_value=tested.p_value,
        effect={"psi": psi},
        large_enough=psi >= t.mix_psi,
        evidence={
            "current": dict(current.most_common()),
            "baseline": dict(baseline.most_common()),
        },
    )


async def prompt_size(store: Store, w: Windows, n: int, base_n: int, t: Thresholds) -> Finding:
    """``n``, ``base_n``: requests in each window (an upper bound of those with a count)."""
    if n < t.min_requests or base_n < t.min_requests:
        return not_enough("prompt_tokens", {}, n, base_n, t.min_requests)
    current, baseline = await queries.prompt_tokens(
        store, w, queries.rate(n, t.sample_size), queries.rate(base_n, t.sample_size)
    )
    if len(current) < t.min_requests or len(baseline) < t.min_requests:
        return not_enough("prompt_tokens", {}, len(current), len(baseline), t.min_requests)
    tested = significance.reshaped(current, baseline)
    median, base_median = float(np.median(current)), float(np.median(baseline))
    return Finding(
        "prompt_tokens",
        {},
        f"prompt tokens: median {median:.0f} against {base_median:.0f}; "
        f"distribution distance {tested.statistic:.3f}",
        n_current=n,
        n_baseline=base_n,
        test=tested.test,
        statistic=tested.statistic,
        p_value=tested.p_value,
        effect={"ks_distance": tested.statistic},
        large_enough=tested.statistic >= t.prompt_tokens_ks,
        evidence={"sampled": [len(current), len(baseline)], "median": [median, base_median]},
    )
