"""The statements both stores run against the tables of ``schema.py``, written once.

Each builder takes ``placeholder(n)``, which spells the n-th parameter (1-based) in the
driver's style (``?`` or ``?n`` for sqlite3, ``$n`` for asyncpg); statements without
parameters are plain constants. Outcomes' statements are in ``outcome_sql.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from modelroute.records.stores.body import REQUEST_COLUMNS

Placeholder = Callable[[int], str]

# What reads of whole rows select, by name.
REQUEST_SELECT = ", ".join(REQUEST_COLUMNS)
SCHEMA_VERSION = "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
# How many rows the rollups have added up (``policy_traffic`` counts every row once).
ROLLED_UP = "SELECT COALESCE(SUM(requests), 0) FROM policy_traffic"
RAISED_ALERTS = "SELECT condition, kind FROM drift_alerts"
FEEDBACK_COLUMNS = "id, score, label, source, comment, created_at"


# --- reading ---------------------------------------------------------------------------------


def feedback_stats_sql(placeholder: Placeholder) -> str:
    """``Store.stats``' feedback figures per route and final model (parameter: since)."""
    return f"""
SELECT r.route, r.final_model AS model, AVG(f.score) AS quality, COUNT(*) AS feedback
FROM feedback f JOIN requests r ON r.request_id = f.request_id
WHERE r.started_at >= {placeholder(1)} GROUP BY r.route, r.final_model
"""


def quality_sql(placeholder: Placeholder) -> str:
    """``Store.quality``'s mean score and scored requests per route, final model and
    reported model (parameter: since)."""
    return f"""
SELECT r.route, r.final_model, r.final_reported_model, AVG(f.score), COUNT(f.score)
FROM feedback f JOIN requests r ON r.request_id = f.request_id
WHERE r.started_at >= {placeholder(1)} AND f.score IS NOT NULL
GROUP BY r.route, r.final_model, r.final_reported_model
"""


def query_sql(
    placeholder: Placeholder,
    route: str | None,
    model: str | None,
    since: float | None,
    failed: bool,
    limit: int,
) -> tuple[str, list[Any]]:
    """``Store.query``'s statement and parameters; ``placeholder(n)`` spells the n-th
    parameter (1-based) in the driver's style."""
    where: list[str] = []
    params: list[Any] = []
    for column, op, value in (
        ("route", "=", route),
        ("final_model", "=", model),
        ("started_at", ">=", since),
    ):
        if value is not None:
            params.append(value)
            where.append(f"{column} {op} {placeholder(len(params))}")
    if failed:
        where.append("status <> 'ok'")
    params.append(limit)
    sql = (
        f"SELECT {REQUEST_SELECT} FROM requests WHERE {' AND '.join(where) or '1 = 1'} "
        f"ORDER BY started_at DESC, request_id DESC LIMIT {placeholder(len(params))}"
    )
    return sql, params


def page_sql(
    placeholder: Placeholder, since: float | None, route: str | None
) -> tuple[str, list[Any]]:
    """The next page of ``Store.scan``, oldest first: parameters 1 and 2 are the (started_at,
    request_id) of the last row of the previous page, the last one the page size."""
    where = [f"(started_at, request_id) > ({placeholder(1)}, {placeholder(2)})"]
    params: list[Any] = []
    for column, op, value in (("started_at", ">=", since), ("route", "=", route)):
        if value is not None:
            params.append(value)
            where.append(f"{column} {op} {placeholder(len(params) + 2)}")
    sql = (
        f"SELECT {REQUEST_SELECT} FROM requests WHERE {' AND '.join(where)} "
        f"ORDER BY started_at, request_id LIMIT {placeholder(len(params) + 3)}"
    )
    return sql, params


def feedback_sql(placeholder: Placeholder) -> str:
    """``Store.add_feedback``'s statement: the request's one feedback row, inserted or replaced
    by the latest. Parameters: request id, score, label, source, comment, created_at; nothing
    is written for an unknown request id."""
    marks = [placeholder(n) for n in range(1, 7)]
    return (
        "INSERT INTO feedback (request_id, score, label, source, comment, created_at) "
        f"SELECT {', '.join(marks)} "
        f"WHERE EXISTS (SELECT 1 FROM requests WHERE request_id = {marks[0]}) "
        "ON CONFLICT (request_id) DO UPDATE SET score = excluded.score, "
        "label = excluded.label, source = excluded.source, comment = excluded.comment, "
        "created_at = excluded.created_at"
    )


# --- drift alerts ----------------------------------------------------------------------------


def raise_alert_sql(placeholder: Placeholder) -> str:
    """Keep one alert condition unless kept already; returns its row only when it is new.
    Parameters: condition, kind, raised_at, evidence (JSON text)."""
    marks = [placeholder(n) for n in range(1, 5)]
    return (
        "INSERT INTO drift_alerts (condition, kind, raised_at, evidence) "
        f"VALUES ({', '.join(marks)}) ON CONFLICT (condition) DO NOTHING RETURNING condition"
    )


# --- the dashboard's policies and snapshots --------------------------------------------------

SNAPSHOTS_KEPT = 20  # per kind: the latest is what pages read, a few more for a history


def policy_sql(placeholder: Placeholder) -> str:
    """Keep a policy's text by its hash unless kept already; returns its row only when new.
    Parameters: hash, version, source, text, stored_at."""
    marks = [placeholder(n) for n in range(1, 6)]
    return (
        "INSERT INTO policies (policy_hash, version, source, text, stored_at) "
        f"VALUES ({', '.join(marks)}) ON CONFLICT (policy_hash) DO NOTHING RETURNING policy_hash"
    )


def snapshot_sql(placeholder: Placeholder) -> tuple[str, str]:
    """Store one analysis snapshot (kind, computed_at, took_s, headline, data, text), then
    forget the kind's older ones beyond ``SNAPSHOTS_KEPT`` (parameter: the kind)."""
    marks = [placeholder(n) for n in range(1, 7)]
    insert = (
        "INSERT INTO analysis_snapshots (kind, computed_at, took_s, headline, data, text) "
        f"VALUES ({', '.join(marks)})"
    )
    kind = placeholder(1)
    prune = (
        f"DELETE FROM analysis_snapshots WHERE kind = {kind} AND id NOT IN (SELECT id FROM "
        f"analysis_snapshots WHERE kind = {kind} ORDER BY computed_at DESC, id DESC "
        f"LIMIT {SNAPSHOTS_KEPT})"
    )
    return insert, prune
