"""What the audit reads from a store, added up by the database (``Store.read_sql``).

Every figure is an aggregate over the columns derived when a record is stored (task key,
decision reason, token counts; see ``records/derived.py``) and served by migration 7's
covering index: SQLite walks ``requests_task_traffic`` in the GROUP BY's own order without
reading a row of the table or sorting; PostgreSQL scans ``requests_traffic`` by time,
index-only, and groups with a hash. No query returns a row per request, except the bounded
samples the replay check and the example prompts need.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from modelroute.records.stores.base import ScoreRow, Store

# SQLite's planner has no statistics for a store nobody ran ANALYZE on, and then prefers the
# narrower (route, time) or (model, time) indexes followed by a read of each row: ten times
# slower on 10M records. The covering index is named for it.
_SQLITE_INDEX = "INDEXED BY requests_task_traffic"
_SUMS = (
    "COUNT(*), SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END), COALESCE(SUM(cost_usd), 0), "
    "COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), "
    "COALESCE(SUM(cached_input_tokens), 0), COALESCE(SUM(cache_write_tokens), 0)"
)


@dataclass(frozen=True, slots=True)
class Totals:
    requests: int
    spend_usd: float
    first_at: float | None
    last_at: float | None


@dataclass(frozen=True, slots=True)
class Volume:
    task_key: str
    requests: int
    spend_usd: float


@dataclass(frozen=True, slots=True)
class Usage:
    """Requests of one group and what they used: ``ok`` answered, the rest did not."""

    requests: int
    ok: int
    spend_usd: float
    input_tokens: int
    output_tokens: int
    cached_input_tokens: int
    cache_write_tokens: int

    @classmethod
    def of(cls, values: Sequence[Any]) -> Usage:
        n, ok, spend, i, o, c, w = values
        return cls(int(n), int(ok or 0), float(spend), int(i), int(o), int(c), int(w))


@dataclass(frozen=True, slots=True)
class Group:
    """One task's requests served by one model, decided one way."""

    task_key: str
    route: str | None
    model: str | None
    reason: str | None  # the decision_reason column (JSON), or None
    usage: Usage


@dataclass(frozen=True, slots=True)
class Bucket:
    """One task's requests served by one model, decided one way, in one time bucket (a day or
    an hour)."""

    task_key: str
    model: str
    reason: str | None
    bucket: int  # started_at // bucket seconds
    usage: Usage


def _p(store: Store, n: int) -> str:
    """The n-th parameter (numbered in both dialects: a statement may use one twice)."""
    return f"?{n}" if store.dialect == "sqlite" else f"${n}"


def _keys_filter(store: Store, keys: Sequence[str], first: int) -> tuple[str, list[Any]]:
    """``task_key IN (...)`` for SQLite, ``= ANY($n)`` for PostgreSQL; parameters numbered
    from ``first``."""
    if store.dialect == "sqlite":
        marks = ", ".join(f"?{first + i}" for i in range(len(keys)))
        return f"task_key IN ({marks})", list(keys)
    return f"task_key = ANY(${first}::text[])", [list(keys)]


def _index(store: Store) -> str:
    return _SQLITE_INDEX if store.dialect == "sqlite" else ""


async def volumes(store: Store, since: float, top: int) -> tuple[Totals, list[Volume]]:
    """All traffic since ``since``, and the ``top`` task keys by requests (one scan: the
    totals are window sums over the per-task groups)."""
    sql = (
        "SELECT task_key, COUNT(*) AS n, COALESCE(SUM(cost_usd), 0), "
        "SUM(COUNT(*)) OVER (), SUM(COALESCE(SUM(cost_usd), 0)) OVER (), "
        "MIN(MIN(started_at)) OVER (), MAX(MAX(started_at)) OVER () "
        f"FROM requests {_index(store)} WHERE started_at >= {_p(store, 1)} "
        f"GROUP BY task_key ORDER BY n DESC, task_key LIMIT {_p(store, 2)}"
    )
    rows = await store.read_sql(sql, [since, top + 1])  # one more: the keyless may be one
    if not rows:
        return Totals(0, 0.0, None, None), []
    first = rows[0]
    totals = Totals(int(first[3]), float(first[4]), first[5], first[6])
    top_keys = [Volume(r[0], int(r[1]), float(r[2])) for r in rows if r[0] is not None]
    return totals, top_keys[:top]


async def groups(store: Store, keys: Sequence[str], since: float) -> list[Group]:
    """Each task's requests per route, serving model and decision reason."""
    if not keys:
        return []
    where, params = _keys_filter(store, keys, 1)
    params.append(since)
    sql = (
        f"SELECT task_key, route, final_model, decision_reason, {_SUMS} "
        f"FROM requests {_index(store)} WHERE {where} "
        f"AND started_at >= {_p(store, len(params))} GROUP BY task_key, route, final_model, "
        "decision_reason"
    )
    rows = await store.read_sql(sql, params)
    return [Group(r[0], r[1], r[2], r[3], Usage.of(r[4:])) for r in rows]


async def buckets(store: Store, keys: Sequence[str], since: float, bucket_s: float) -> list[Bucket]:
    """The requests of ``keys`` per serving model, decision reason and time bucket, for the
    interval of the savings."""
    if not keys:
        return []
    where, params = _keys_filter(store, keys, 1)
    params += [since, bucket_s]
    at, size = _p(store, len(params) - 1), _p(store, len(params))
    bucket = (
        f"CAST(started_at / {size} AS INTEGER)"
        if store.dialect == "sqlite"
        else f"floor(started_at / {size})::bigint"
    )
    sql = (
        f"SELECT task_key, final_model, decision_reason, {bucket} AS bucket, {_SUMS} "
        f"FROM requests {_index(store)} WHERE {where} AND started_at >= {at} "
        "AND final_model IS NOT NULL GROUP BY task_key, final_model, decision_reason, bucket"
    )
    rows = await store.read_sql(sql, params)
    return [Bucket(r[0], r[1], r[2], int(r[3]), Usage.of(r[4:])) for r in rows]


async def sample_ids(store: Store, group: Group, since: float, limit: int) -> list[str]:
    """Up to ``limit`` request ids of one group (for the replay check and the examples): a
    range of the index both dialects keep in (task key, route, model, reason, time) order."""
    where: list[str] = [f"task_key = {_p(store, 1)}"]
    params: list[Any] = [group.task_key]
    for column, value in (("route", group.route), ("final_model", group.model),
                          ("decision_reason", group.reason)):  # fmt: skip
        if value is None:  # "= NULL" matches nothing, and IS NOT DISTINCT FROM no index
            where.append(f"{column} IS NULL")
        else:
            params.append(value)
            where.append(f"{column} = {_p(store, len(params))}")
    params += [since, limit]
    sql = (
        f"SELECT request_id FROM requests {_index(store)} WHERE {' AND '.join(where)} "
        f"AND started_at >= {_p(store, len(params) - 1)} LIMIT {_p(store, len(params))}"
    )
    return [r[0] for r in await store.read_sql(sql, params)]


async def task_scores(store: Store, keys: Sequence[str]) -> list[ScoreRow]:
    """The outcomes that measure one of these tasks, keyed by task key as the quality
    aggregates read them: those of a live request (shadow, feedback) by its request's key,
    the others (evaluations, imports) by their task label."""
    if not keys:
        return []
    joined, params = _keys_filter(store, keys, 1)
    labelled = joined.replace("task_key", "task")
    columns = "o.model, COALESCE(o.reported_model, o.model), o.source, o.score, o.created_at"
    sql = (
        f"SELECT r.task_key, {columns} FROM outcomes o "
        f"JOIN requests r ON r.request_id = o.request_id WHERE r.{joined} "
        f"UNION ALL SELECT o.task, {columns} FROM outcomes o "
        f"WHERE o.request_id IS NULL AND o.{labelled}"
    )
    rows = await store.read_sql(sql, params)
    return [(r[0], r[1], r[2], r[3], float(r[4]), float(r[5])) for r in rows]
