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

A batch is aggregated in memory (``Rollup``) and added to what is stored with one upsert per
touched key (PostgreSQL: in the insert's statement): the cost is per batch, not per record.
Only records the batch actually inserted count (a replayed spool skips those stored already,
and so do the rollups).
Filling the rollups of rows already stored (migration 9, ``Store.rebuild_rollups``) is a few
``INSERT ... SELECT ... GROUP BY`` statements (``backfill_sql``) that compute the same figures
in SQL. The
missing route or model of a record (a rejected request) is kept as ``''`` in the key columns,
which are part of a primary key and so cannot be NULL.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
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
_MINUTE = WIDTHS["minute"]


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


@lru_cache(maxsize=1024)
def _served(reason: str | None) -> tuple[str | None, tuple[tuple[str, str], ...]]:
    """How the answering model came to answer, and the (model, reason) pairs rejected. The
    same reason recurs for every request decided the same way: each is parsed once."""
    if not reason:
        return None, ()
    parsed = orjson.loads(reason)
    return parsed[6], tuple((str(m), str(why)) for m, why in parsed[5] or ())


@dataclass(slots=True)
class Rollup:
    """The rollup rows of some records, aggregated in memory."""

    figures: dict[tuple[str, int, str, str], list[float]] = field(default_factory=dict)
    # Rejections are counted per (minute, route, decision reason) while adding, and spread
    # over their (candidate, reason) pairs and grains only when the rows are read: a batch
    # holds a handful of distinct reasons, each with several rejections.
    reasons: dict[tuple[int, str, str], int] = field(default_factory=dict)
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
        if rejected:
            key = (int(started_at // _MINUTE) * _MINUTE, r, str(reason))
            self.reasons[key] = self.reasons.get(key, 0) + 1
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
        """``REJECTION_COLUMNS`` rows of one grain, in key order: each distinct decision
        reason's count spread over its (candidate, reason) pairs."""
        width = WIDTHS[grain]
        counts: dict[tuple[int, str, str, str], int] = {}
        for (minute, r, reason), n in self.reasons.items():
            bucket = minute // width * width
            for candidate, why in _served(reason)[1]:
                key = (bucket, r, candidate, why)
                counts[key] = counts.get(key, 0) + n
        return [(*key, n) for key, n in sorted(counts.items())]

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


# --- set-based: the rollups of many rows in one statement ----------------------------------
#
# The same figures as ``Rollup`` computed by the database from rows with the columns of
# ``requests``: the bucket is the exact
# floor of started_at / width (the quotient is rounded, so one width too far is taken back),
# the histogram bucket is ``latency_bucket``'s formula (the C library's log10, as in Python),
# rejections come from the decision reason's [model, reason] pairs (index 5), how the model
# came to answer from index 6. Floats are added in another order than ``Rollup`` adds them
# (sums agree to rounding). Each grain after the first is added up from the previous one's
# rows (a minute lies in one hour).

Dialect = Literal["sqlite", "postgres"]
_MAX = "1.7976931348623157e308"
KINDS: tuple[str, ...] = ("rollup", "rejections")
TABLES: tuple[str, ...] = (
    *(table(kind, grain) for grain in WIDTHS for kind in KINDS), "policy_traffic",
)  # fmt: skip
_FLOAT_FIGURES = ("spend_usd", "latency_ms_sum")
_KEYS = {"rollup": ROLLUP_COLUMNS[:3], "rejections": REJECTION_COLUMNS[:4]}


def _finite(column: str, dialect: Dialect) -> str:
    if dialect == "sqlite":  # NaN is stored as NULL, and fails the test too; "+": no index
        return f"+{column} BETWEEN -{_MAX} AND {_MAX}"
    return f"({column} > '-Infinity' AND {column} < 'Infinity')"  # NaN sorts above Infinity


def _bucket(width: int, dialect: Dialect) -> str:
    """The exact floor(started_at / width) * width: the quotient is rounded and then
    truncated (SQLite's CAST; PostgreSQL's floor), so one width too far is taken back."""
    if dialect == "sqlite":
        k = f"CAST(started_at / {width} AS INTEGER)"
        return f"({k} - ({k} * {width} > started_at)) * {width}"
    k = f"CAST(floor(started_at / {width}) AS BIGINT)"
    return f"({k} - CAST({k} * {width} > started_at AS INT)) * {width}"


def _lowest(i: int) -> float:
    """The smallest float ``latency_bucket`` puts in bucket ``i`` or above (1 <= i)."""
    x = 10 ** ((i - 1) / PER_DECADE)
    while latency_bucket(x) >= i:
        x = math.nextafter(x, 0.0)
    while latency_bucket(x) < i:
        x = math.nextafter(x, math.inf)
    return x


# Bucket i (1 <= i) holds the latencies from LOWEST[i]: found from ``latency_bucket`` itself,
# so SQL comparing with them agrees with it whatever either side's log10 rounds to.
LOWEST: tuple[float, ...] = (-math.inf, *(_lowest(i) for i in range(1, LATENCY_BUCKETS)))


def _exactly(x: float) -> str:
    """A float as SQL that every parser reads exactly: an integer over a power of two."""
    numerator, denominator = x.as_integer_ratio()
    return f"(CAST({numerator} AS DOUBLE PRECISION) / {denominator})"


def _histogram_bucket(dialect: Dialect) -> str:
    """``latency_bucket(latency_ms)`` in SQL (NaN: bucket 0; SQLite stores none)."""
    search = _search(0, LATENCY_BUCKETS - 1)
    if dialect == "sqlite":
        return search
    return f"CASE WHEN latency_ms = 'NaN' THEN 0 ELSE {search} END"  # NaN >= anything here


def _search(low: int, high: int) -> str:
    """The bucket among ``low..high`` holding latency_ms: a binary search over ``LOWEST``,
    six comparisons a row."""
    if low == high:
        return str(low)
    mid = (low + high + 1) // 2
    above, below = _search(mid, high), _search(low, mid - 1)
    return f"CASE WHEN latency_ms >= {_exactly(LOWEST[mid])} THEN {above} ELSE {below} END"


def _reason(index: int, dialect: Dialect) -> str:
    """Element ``index`` of the decision reason as text (NULL without a reason)."""
    if dialect == "sqlite":
        return (
            f"CASE WHEN decision_reason <> '' THEN json_extract(decision_reason, '$[{index}]') END"
        )
    return f"CASE WHEN decision_reason <> '' THEN CAST(decision_reason AS json) ->> {index} END"


# Keeps a subquery from being merged into the query around it, which would compute each of its
# expressions once per use (the histogram bucket 42 times a row) instead of once per row.
_FENCE: dict[Dialect, str] = {"sqlite": " LIMIT -1", "postgres": " OFFSET 0"}


def figures_sql(dialect: Dialect, source: str, width: int) -> str:
    """``ROLLUP_COLUMNS`` rows of the rows of ``source``, one per key, for buckets of
    ``width`` seconds."""
    hist = ", ".join(f"COUNT(*) FILTER (WHERE h = {i})" for i in range(LATENCY_BUCKETS))
    rows = (
        f"SELECT {_bucket(width, dialect)} AS bucket, COALESCE(route, '') AS route, "
        f"COALESCE(final_model, '') AS model, status, {_reason(6, dialect)} AS served, "
        f"CASE WHEN {_finite('cost_usd', dialect)} THEN cost_usd ELSE 0.0 END AS spend, "
        f"CASE WHEN {_finite('latency_ms', dialect)} THEN latency_ms ELSE 0.0 END AS latency, "
        f"{_histogram_bucket(dialect)} AS h FROM {source} WHERE {_finite('started_at', dialect)}"
        f"{_FENCE[dialect]}"
    )
    return (
        "SELECT bucket, route, model, COUNT(*), COUNT(*) FILTER (WHERE status <> 'ok'), "
        "COUNT(*) FILTER (WHERE served = 'fallback'), "
        "COUNT(*) FILTER (WHERE served = 'escalated'), SUM(spend), SUM(latency), "
        f"{hist} FROM ({rows}) AS c GROUP BY bucket, route, model"
    )


def rejections_sql(dialect: Dialect, source: str, width: int) -> str:
    """``REJECTION_COLUMNS`` rows of the rows of ``source``, for buckets of ``width`` s."""
    where = _finite("started_at", dialect)
    if dialect == "sqlite":
        pairs = (
            f"SELECT {_bucket(width, dialect)} AS bucket, COALESCE(route, '') AS route, "
            "json_extract(j.value, '$[0]') AS candidate, json_extract(j.value, '$[1]') AS reason "
            f"FROM {source} AS r, json_each(r.decision_reason, '$[5]') AS j WHERE {where} "
            "AND r.decision_reason <> '' AND json_type(r.decision_reason, '$[5]') = 'array'"
        )
    else:
        listed = "CAST(r.decision_reason AS json) -> 5"
        pairs = (
            f"SELECT {_bucket(width, dialect)} AS bucket, COALESCE(route, '') AS route, "
            "j.value ->> 0 AS candidate, j.value ->> 1 AS reason "
            f"FROM {source} AS r CROSS JOIN LATERAL json_array_elements(CASE WHEN "
            f"r.decision_reason <> '' AND json_typeof({listed}) = 'array' THEN {listed} END) "
            f"AS j WHERE {where}"
        )
    return (
        f"SELECT bucket, route, candidate, reason, COUNT(*) FROM ({pairs}) AS p "
        "GROUP BY bucket, route, candidate, reason"
    )


def coarser_sql(kind: str, source: str, width: int) -> str:
    """The rows of rollup ``kind`` (rollup or rejections) from the finer ones of ``source``
    for buckets of ``width`` seconds (a multiple of the finer width)."""
    key = _KEYS[kind][1:]
    added = FIGURES if kind == "rollup" else ("requests",)
    # Counts as INTEGER: PostgreSQL adds up BIGINTs as NUMERIC (exact, and several times
    # slower); one finer row never counts 2^31 requests.
    sums = [f"SUM({c})" if c in _FLOAT_FIGURES else f"SUM(CAST({c} AS INTEGER))" for c in added]
    return (
        f"SELECT bucket - (bucket % {width} + {width}) % {width} AS b, {', '.join(key)}, "
        f"{', '.join(sums)} FROM {source} "
        f"GROUP BY b, {', '.join(key)}"
    )


def policy_sql(dialect: Dialect) -> str:
    """``POLICY_COLUMNS`` rows of every stored row. The version is the latest row's of that
    policy that has one: looked up through the time index, not read from every body."""
    finite = _finite("started_at", dialect)
    version = "json_extract(body, '$[8]')" if dialect == "sqlite" else "body ->> 8"
    latest = (
        f"SELECT {version} FROM requests AS v WHERE v.policy_hash = g.policy_hash AND "
        f"{finite.replace('started_at', 'v.started_at')} AND {version} IS NOT NULL "
        "ORDER BY v.started_at DESC, v.request_id DESC LIMIT 1"
    )
    return (
        f"SELECT g.policy_hash, ({latest}), g.first, g.last, g.n FROM (SELECT policy_hash, "
        "MIN(started_at) AS first, MAX(started_at) AS last, COUNT(*) AS n FROM requests "
        f"WHERE {finite} GROUP BY policy_hash) AS g"
    )


def backfill_sql(dialect: Dialect) -> tuple[str, ...]:
    """The statements that fill the empty rollup tables from every row of ``requests``."""
    out = []
    finer: Grain | None = None
    for grain, width in WIDTHS.items():
        for kind in KINDS:
            if finer is not None:
                select = coarser_sql(kind, table(kind, finer), width)
            elif kind == "rollup":
                select = figures_sql(dialect, "requests", width)
            else:
                select = rejections_sql(dialect, "requests", width)
            out.append(f"INSERT INTO {table(kind, grain)} ({', '.join(_columns(kind))}) {select}")
        finer = grain
    out.append(f"INSERT INTO policy_traffic ({', '.join(POLICY_COLUMNS)}) {policy_sql(dialect)}")
    return tuple(out)


def _columns(kind: str) -> tuple[str, ...]:
    return ROLLUP_COLUMNS if kind == "rollup" else REJECTION_COLUMNS
