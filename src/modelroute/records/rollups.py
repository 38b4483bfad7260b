"""Per-minute and per-hour aggregates of the records, kept by the stores with each batch, so
that the dashboard reads thousands of rollup rows instead of millions of records.

Per (bucket, route, final model), in ``rollup_minute`` and ``rollup_hour``: requests, errors
(status other than ok), fallbacks and escalations (how the answering model came to answer, from
the decision reason), spend, the sum of latencies, and a latency histogram: ``LATENCY_BUCKETS``
fixed log-spaced buckets (8 per decade from 1 ms to 100 s, plus one below and one above), so a
percentile is read from counts, to within one bucket. Per (bucket, route, candidate, reason),
in ``rejections_minute`` and ``rejections_hour``: how many requests had that candidate removed
for that reason. Per policy hash, in ``policy_traffic``: its label, first and last request and
request count.

A batch is aggregated in memory (``Rollup``) and written as one upsert per touched key, adding
to what is stored: the cost is per batch, not per record. Only records the batch actually
inserted count (a replayed spool skips those stored already, and so do the rollups). The
missing route or model of a record (a rejected request) is kept as ``''`` in the key columns,
which are part of a primary key and so cannot be NULL.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

# (started_at, route, final_model, status, latency_ms, cost_usd, decision_reason,
#  policy_hash, policy_version): what one record contributes.
Contribution = tuple[float, str | None, str | None, str, float, float, str | None, str, str | None]

PER_DECADE = 8
LATENCY_BUCKETS = 2 + 5 * PER_DECADE  # below 1 ms, 40 from 1 ms to 100 s, 100 s and above
HISTOGRAM: tuple[str, ...] = tuple(f"l{i:02d}" for i in range(LATENCY_BUCKETS))
Grain = Literal["minute", "hour"]
WIDTHS: dict[Grain, int] = {"minute": 60, "hour": 3600}
FIGURES: tuple[str, ...] = (
    "requests", "errors", "fallbacks", "escalations", "spend_usd", "latency_ms_sum", *HISTOGRAM,
)  # fmt: skip
ROLLUP_COLUMNS: tuple[str, ...] = ("bucket", "route", "model", *FIGURES)
REJECTION_COLUMNS: tuple[str, ...] = ("bucket", "route", "candidate", "reason", "requests")
POLICY_COLUMNS: tuple[str, ...] = ("policy_hash", "version", "first_seen", "last_seen", "requests")
_SPEND, _LATENCY = FIGURES.index("spend_usd"), FIGURES.index("latency_ms_sum")
_FIRST_BUCKET = len(FIGURES) - LATENCY_BUCKETS


def latency_bucket(ms: float) -> int:
    """The histogram bucket of a latency: 0 below 1 ms, then [10^((i-1)/8), 10^(i/8)) ms."""
    if not ms >= 1.0:  # below 1 ms, and NaN
        return 0
    if ms == math.inf:
        return LATENCY_BUCKETS - 1
    return min(int(math.log10(ms) * PER_DECADE) + 1, LATENCY_BUCKETS - 1)


def bucket_bounds(i: int) -> tuple[float, float]:
    """The latencies bucket ``i`` holds, [low, high)."""
    low = 0.0 if i == 0 else 10 ** ((i - 1) / PER_DECADE)
    high = math.inf if i == LATENCY_BUCKETS - 1 else 10 ** (i / PER_DECADE)
    return low, high


def representative(i: int) -> float:
    """The value a percentile falling in bucket ``i`` is reported as: its geometric middle
    (the end buckets: their finite bound). Within a factor 10^(1/16) (±16%) of any latency
    the bucket holds."""
    low, high = bucket_bounds(i)
    if i == 0:
        return high
    if i == LATENCY_BUCKETS - 1:
        return low
    return math.sqrt(low * high)


def percentile(counts: Sequence[int], p: float) -> float | None:
    """Nearest-rank percentile (the smallest value with at least ``p`` of the counts at or
    below it, as the stores' ``stats`` compute it) from histogram counts; None when empty."""
    total = sum(counts)
    if not total:
        return None
    rank = max(1, math.ceil(p * total - 1e-9))
    seen = 0
    for i, n in enumerate(counts):
        seen += n
        if seen >= rank:
            return representative(i)
    return representative(LATENCY_BUCKETS - 1)


def _served(reason: str | None) -> tuple[str | None, list[list[str]]]:
    """How the answering model came to answer, and the (model, reason) pairs rejected."""
    if not reason:
        return None, []
    parsed = orjson.loads(reason)
    return parsed[6], parsed[5] or []


@dataclass(slots=True)
class Rollup:
    """The rollup rows of some records, aggregated in memory."""

    figures: dict[tuple[str, int, str, str], list[float]] = field(default_factory=dict)
    rejections: dict[tuple[str, int, str, str, str], int] = field(default_factory=dict)
    policies: dict[str, list[Any]] = field(default_factory=dict)
    records: int = 0

    def add(self, c: Contribution) -> None:
        started_at, route, model, status, latency, cost, reason, policy, version = c
        if not math.isfinite(started_at):
            return  # no bucket to count it in
        self.records += 1
        served, rejected = _served(reason)
        r, m = route or "", model or ""
        hist = _FIRST_BUCKET + latency_bucket(latency)
        for grain, width in WIDTHS.items():
            bucket = int(started_at // width) * width
            row = self.figures.get((grain, bucket, r, m))
            if row is None:
                row = self.figures[(grain, bucket, r, m)] = [0] * len(FIGURES)
            row[0] += 1
            row[1] += status != "ok"
            row[2] += served == "fallback"
            row[3] += served == "escalated"
            if math.isfinite(cost):
                row[_SPEND] += cost
            if math.isfinite(latency):
                row[_LATENCY] += latency
            row[hist] += 1
            for candidate, why in rejected:
                key = (grain, bucket, r, str(candidate), str(why))
                self.rejections[key] = self.rejections.get(key, 0) + 1
        seen = self.policies.get(policy)
        if seen is None:
            self.policies[policy] = [version, started_at, started_at, 1]
        else:
            seen[0] = seen[0] if version is None else version
            seen[1] = min(seen[1], started_at)
            seen[2] = max(seen[2], started_at)
            seen[3] += 1

    def extend(self, contributions: Iterable[Contribution]) -> Rollup:
        for c in contributions:
            self.add(c)
        return self

    def rows(self, grain: Grain) -> list[tuple[Any, ...]]:
        """``ROLLUP_COLUMNS`` rows of one grain, in key order (concurrent writers then lock
        the keys they share in the same order and cannot deadlock)."""
        return [
            (bucket, r, m, *values)
            for (g, bucket, r, m), values in sorted(self.figures.items())
            if g == grain
        ]

    def rejection_rows(self, grain: Grain) -> list[tuple[Any, ...]]:
        return [
            (bucket, r, candidate, why, n)
            for (g, bucket, r, candidate, why), n in sorted(self.rejections.items())
            if g == grain
        ]

    def policy_rows(self) -> list[tuple[Any, ...]]:
        return [(h, *values) for h, values in sorted(self.policies.items())]


def contribution(record: Any, decision_reason: str | None) -> Contribution:
    """What a ``RequestRecord`` contributes (its decision reason as the row encoder made it)."""
    return (
        record.started_at, record.route, record.final_model, str(record.status),
        record.latency_ms, record.cost_usd, decision_reason, record.policy_hash,
        record.policy_version,
    )  # fmt: skip


# --- SQL -------------------------------------------------------------------------------------


def table(kind: str, grain: Grain) -> str:
    """``rollup_minute``, ``rejections_hour``, ...: ``kind`` is rollup or rejections."""
    return f"{kind}_{grain}"


def _upsert(name: str, columns: Sequence[str], key: int, values: str) -> str:
    adds = ", ".join(f"{c} = {name}.{c} + excluded.{c}" for c in columns[key:])
    return (
        f"INSERT INTO {name} ({', '.join(columns)}) {values} "
        f"ON CONFLICT ({', '.join(columns[:key])}) DO UPDATE SET {adds}"
    )


def upsert_sql(
    name: str, columns: Sequence[str], key: int, values: str, *, dialect: str = "sqlite"
) -> str:
    """Add rows to a rollup table: ``columns[:key]`` is the key, the rest are added to.
    ``values``: ``VALUES (?, ...)`` or a ``SELECT``; ``policy_traffic`` keeps the earliest
    first and the latest last request instead."""
    if name != "policy_traffic":
        return _upsert(name, columns, key, values)
    least, greatest = ("MIN", "MAX") if dialect == "sqlite" else ("LEAST", "GREATEST")
    return (
        f"INSERT INTO policy_traffic ({', '.join(columns)}) {values} "
        "ON CONFLICT (policy_hash) DO UPDATE SET "
        "version = COALESCE(excluded.version, policy_traffic.version), "
        f"first_seen = {least}(policy_traffic.first_seen, excluded.first_seen), "
        f"last_seen = {greatest}(policy_traffic.last_seen, excluded.last_seen), "
        "requests = policy_traffic.requests + excluded.requests"
    )


def tables(real: str) -> tuple[str, ...]:
    """The CREATE TABLE statements of the rollups (``real``: the dialect's float type)."""
    hist = ", ".join(f"{c} BIGINT NOT NULL DEFAULT 0" for c in HISTOGRAM)
    out = []
    for grain in WIDTHS:
        out.append(
            f"CREATE TABLE rollup_{grain} (bucket BIGINT NOT NULL, route TEXT NOT NULL, "
            "model TEXT NOT NULL, requests BIGINT NOT NULL, errors BIGINT NOT NULL, "
            "fallbacks BIGINT NOT NULL, escalations BIGINT NOT NULL, "
            f"spend_usd {real} NOT NULL, latency_ms_sum {real} NOT NULL, {hist}, "
            "PRIMARY KEY (bucket, route, model))"
        )
        out.append(
            f"CREATE TABLE rejections_{grain} (bucket BIGINT NOT NULL, route TEXT NOT NULL, "
            "candidate TEXT NOT NULL, reason TEXT NOT NULL, requests BIGINT NOT NULL, "
            "PRIMARY KEY (bucket, route, candidate, reason))"
        )
    out.append(
        "CREATE TABLE policy_traffic (policy_hash TEXT PRIMARY KEY, version TEXT, "
        f"first_seen {real} NOT NULL, last_seen {real} NOT NULL, requests BIGINT NOT NULL)"
    )
    return tuple(out)


# The columns of ``requests`` a contribution is read from (for the backfill), by dialect.
SOURCE_COLUMNS: dict[str, str] = {
    "sqlite": "started_at, route, final_model, status, latency_ms, cost_usd, decision_reason, "
    "policy_hash, json_extract(body, '$[8]')",
    "postgres": "started_at, route, final_model, status, latency_ms, cost_usd, decision_reason, "
    "policy_hash, body ->> 8",
}
