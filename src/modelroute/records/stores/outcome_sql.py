"""Outcomes in the ``outcomes`` table: their rows, and the statements both stores run on them.

Builders take ``placeholder(n)`` as in ``sql.py``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Literal, Protocol

import orjson

from modelroute.outcomes.outcome import Outcome, OutcomeSource
from modelroute.records.stores.sql import Placeholder


class Row(Protocol):
    """A fetched row addressed by column name: ``sqlite3.Row`` and ``asyncpg.Record`` both."""

    def __getitem__(self, key: str, /) -> Any: ...


# The ``outcomes`` columns: ``Outcome``'s fields, outcome_id first.
OUTCOME_COLUMNS: tuple[str, ...] = (
    "outcome_id", "source", "grader", "score", "model", "created_at", "prompt_id",
    "prompt_hash", "task", "route", "reported_model", "fingerprint", "cost_usd", "latency_ms",
    "request_id", "run", "confidences", "detail",
)  # fmt: skip


def outcome_rows(outcomes: Iterable[Outcome], *, last: bool = False) -> list[tuple[Any, ...]]:
    """Rows in ``OUTCOME_COLUMNS`` order, one per outcome id (a batch may repeat one): the
    first of each, or with ``last`` the last; confidences and detail as JSON text."""
    rows: dict[str, tuple[Any, ...]] = {}
    dumps = orjson.dumps
    for o in outcomes:
        if not last and o.outcome_id in rows:
            continue
        rows[o.outcome_id] = (
            o.outcome_id, str(o.source), o.grader, o.score, o.model, o.created_at, o.prompt_id,
            o.prompt_hash, o.task, o.route, o.reported_model, o.fingerprint, o.cost_usd,
            o.latency_ms, o.request_id, o.run, dumps(dict(o.confidences)).decode(),
            dumps(dict(o.detail)).decode(),
        )  # fmt: skip
    return list(rows.values())


def outcome_from(row: Row) -> Outcome:
    """A stored ``outcomes`` row (JSON columns as text, as both drivers return them)."""
    return Outcome(
        source=OutcomeSource(row["source"]),
        grader=row["grader"],
        score=row["score"],
        model=row["model"],
        created_at=row["created_at"],
        prompt_id=row["prompt_id"],
        prompt_hash=row["prompt_hash"],
        task=row["task"],
        route=row["route"],
        reported_model=row["reported_model"],
        fingerprint=row["fingerprint"],
        cost_usd=row["cost_usd"],
        latency_ms=row["latency_ms"],
        request_id=row["request_id"],
        run=row["run"],
        confidences=orjson.loads(row["confidences"]),
        detail=orjson.loads(row["detail"]),
        outcome_id=row["outcome_id"],
    )


def outcomes_sql(
    placeholder: Placeholder,
    *,
    source: str | None,
    route: str | None,
    task: str | None,
    model: str | None,
    run: str | None,
    since: float | None,
    limit: int | None,
) -> tuple[str, list[Any]]:
    """``Store.outcomes``' statement and parameters, oldest first."""
    where: list[str] = []
    params: list[Any] = []
    narrow = (("route", route), ("task", task), ("model", model), ("run", run))
    _outcome_filters(placeholder, where, params, source, since, narrow)
    sql = (
        f"SELECT {', '.join(OUTCOME_COLUMNS)} FROM outcomes "
        f"WHERE {' AND '.join(where) or '1 = 1'} ORDER BY created_at, outcome_id"
    )
    if limit is not None:
        params.append(limit)
        sql += f" LIMIT {placeholder(len(params))}"
    return sql, params


def outcome_scores_sql(
    placeholder: Placeholder,
    by: Literal["route", "task"],
    source: str | None,
    since: float | None,
) -> tuple[str, list[Any]]:
    """``Store.outcome_scores``' statement and parameters."""
    if by not in ("route", "task"):
        raise ValueError(f"outcomes are aggregated by 'route' or 'task', not {by!r}")
    where = [f"{by} IS NOT NULL"]
    params: list[Any] = []
    _outcome_filters(placeholder, where, params, source, since)
    sql = (
        f"SELECT {by}, model, COALESCE(reported_model, model), source, score, created_at "
        f"FROM outcomes WHERE {' AND '.join(where)}"
    )
    return sql, params


def _outcome_filters(
    placeholder: Placeholder,
    where: list[str],
    params: list[Any],
    source: str | None,
    since: float | None,
    equal: Iterable[tuple[str, str | None]] = (),
) -> None:
    """Add a condition and its parameter for each filter that is given."""
    given: list[tuple[str, str, Any]] = [(c, "=", v) for c, v in equal]
    given += [("source", "=", None if source is None else str(source))]
    given += [("created_at", ">=", since)]
    for column, op, value in given:
        if value is not None:
            params.append(value)
            where.append(f"{column} {op} {placeholder(len(params))}")


def outcome_conflict(replace: bool) -> str:
    """What an ``outcomes`` insert does with an id already stored: skip it, or overwrite it."""
    if not replace:
        return "ON CONFLICT (outcome_id) DO NOTHING"
    sets = ", ".join(f"{c} = excluded.{c}" for c in OUTCOME_COLUMNS[1:])
    return f"ON CONFLICT (outcome_id) DO UPDATE SET {sets}"
