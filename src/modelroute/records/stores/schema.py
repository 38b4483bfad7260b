"""The tables records are stored in, how they change over time, and how a record maps to rows.

Both stores share this module: one list of versioned migrations written once, with the few
dialect differences (float, boolean and JSON column types, the feedback id) spelled as
placeholders that ``render`` fills in per dialect. A migration is never edited once released;
a change to the tables is a new step at the end of ``MIGRATIONS``.

The steps, in order: (1) requests and attempts, indexed by time; (2) the policy version, the
client key and the cache-write and reasoning token counts; (3) feedback, and the indexes that
the per-route and per-model reads use; (4) one feedback per request: a later one replaces the
earlier, so a request counts once in measured quality however often it is rated.

Token columns are nullable on purpose: NULL in ``input_tokens`` means the provider reported no
usage at all, which is not the same as zero tokens, and ``get`` gives back exactly what was
written.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import orjson

from modelroute.records.record import Attempt, RequestRecord
from modelroute.types import Usage

Dialect = Literal["sqlite", "postgres"]


class Row(Protocol):
    """A fetched row addressed by column name: ``sqlite3.Row`` and ``asyncpg.Record`` both."""

    def __getitem__(self, key: str, /) -> Any: ...


_TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {
        "real": "REAL",
        "bool": "INTEGER",
        "json": "TEXT",
        "id_pk": "INTEGER PRIMARY KEY",
    },
    "postgres": {
        "real": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
        "json": "JSONB",
        "id_pk": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    },
}


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]  # templates: {real} {bool} {json} {id_pk}


BOOTSTRAP = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, applied_at {real} NOT NULL)"
)

MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "requests and attempts",
        (
            """CREATE TABLE requests (
                request_id TEXT PRIMARY KEY,
                started_at {real} NOT NULL,
                route TEXT, task TEXT, selected_by TEXT,
                endpoint TEXT NOT NULL,
                streamed {bool} NOT NULL,
                status TEXT NOT NULL,
                http_status INTEGER NOT NULL,
                failure TEXT, error TEXT,
                final_model TEXT, final_reported_model TEXT, final_fingerprint TEXT,
                policy_hash TEXT NOT NULL,
                confidence {real},
                escalations INTEGER NOT NULL,
                input_tokens BIGINT, output_tokens BIGINT, cached_input_tokens BIGINT,
                cost_usd {real} NOT NULL,
                price_unknown {bool} NOT NULL,
                latency_ms {real} NOT NULL,
                ttft_ms {real},
                attempt_count INTEGER NOT NULL,
                metadata {json} NOT NULL,
                decision {json},
                prompt TEXT, answer TEXT)""",
            "CREATE INDEX requests_started_at ON requests (started_at)",
            """CREATE TABLE attempts (
                request_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                model TEXT NOT NULL, provider TEXT NOT NULL, model_id TEXT NOT NULL,
                tier INTEGER NOT NULL,
                started_ms {real} NOT NULL, latency_ms {real} NOT NULL, ttft_ms {real},
                outcome TEXT NOT NULL, failure TEXT, status INTEGER, message TEXT,
                retry_after_s {real},
                reported_model TEXT, fingerprint TEXT,
                input_tokens BIGINT, output_tokens BIGINT, cached_input_tokens BIGINT,
                cost_usd {real},
                price_known {bool} NOT NULL,
                confidence {real},
                PRIMARY KEY (request_id, seq))""",
        ),
    ),
    Migration(
        2,
        "policy version, client key, cache-write and reasoning tokens",
        (
            "ALTER TABLE requests ADD COLUMN policy_version TEXT",
            "ALTER TABLE requests ADD COLUMN client_key_id TEXT",
            "ALTER TABLE requests ADD COLUMN cache_write_tokens BIGINT",
            "ALTER TABLE requests ADD COLUMN reasoning_tokens BIGINT",
            "ALTER TABLE attempts ADD COLUMN cache_write_tokens BIGINT",
            "ALTER TABLE attempts ADD COLUMN reasoning_tokens BIGINT",
        ),
    ),
    Migration(
        3,
        "feedback; indexes for per-route and per-model reads",
        (
            """CREATE TABLE feedback (
                id {id_pk},
                request_id TEXT NOT NULL REFERENCES requests (request_id),
                score {real}, label TEXT, source TEXT, comment TEXT,
                created_at {real} NOT NULL)""",
            "CREATE INDEX feedback_request_id ON feedback (request_id)",
            # (column, started_at): serves both the filter and the newest-first order of query().
            "CREATE INDEX requests_route ON requests (route, started_at)",
            "CREATE INDEX requests_final_model ON requests (final_model, started_at)",
        ),
    ),
    Migration(
        4,
        "one feedback per request: the latest of each request kept, then a unique key",
        (
            # Ids only grow, so the highest id of a request is its latest feedback.
            "DELETE FROM feedback WHERE id NOT IN "
            "(SELECT MAX(id) FROM feedback GROUP BY request_id)",
            "DROP INDEX feedback_request_id",
            "CREATE UNIQUE INDEX feedback_request_id_unique ON feedback (request_id)",
        ),
    ),
]

CURRENT_VERSION = MIGRATIONS[-1].version


def render(template: str, dialect: Dialect) -> str:
    return template.format(**_TYPES[dialect])


def pending(
    current: int, dialect: Dialect, target: int | None = None
) -> list[tuple[int, list[str]]]:
    """The steps that take a database at ``current`` to ``target`` (the latest by default)."""
    top = CURRENT_VERSION if target is None else target
    return [
        (m.version, [render(s, dialect) for s in m.statements])
        for m in MIGRATIONS
        if current < m.version <= top
    ]


# --- records <-> rows ------------------------------------------------------------------------

_TOKENS = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)

REQUEST_COLUMNS: tuple[str, ...] = (
    "request_id", "started_at", "route", "task", "selected_by", "endpoint", "streamed",
    "status", "http_status", "failure", "error", "final_model", "final_reported_model",
    "final_fingerprint", "policy_hash", "policy_version", "client_key_id", "confidence",
    "escalations", *_TOKENS, "cost_usd", "price_unknown", "latency_ms", "ttft_ms",
    "attempt_count", "metadata", "decision", "prompt", "answer",
)  # fmt: skip

ATTEMPT_COLUMNS: tuple[str, ...] = (
    "request_id", "seq", "model", "provider", "model_id", "tier", "started_ms", "latency_ms",
    "ttft_ms", "outcome", "failure", "status", "message", "retry_after_s", "reported_model",
    "fingerprint", *_TOKENS, "cost_usd", "price_known", "confidence",
)  # fmt: skip

_REQUEST_BOOLS = frozenset({"streamed", "price_unknown"})
_ATTEMPT_BOOLS = frozenset({"price_known"})
_NOT_RECORD_FIELDS = frozenset({"attempt_count", "seq", "request_id", *_TOKENS})


def query_sql(
    placeholder: Callable[[int], str],
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
        f"SELECT * FROM requests WHERE {' AND '.join(where) or '1 = 1'} "
        f"ORDER BY started_at DESC, request_id DESC LIMIT {placeholder(len(params))}"
    )
    return sql, params


def feedback_sql(placeholder: Callable[[int], str]) -> str:
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


def _dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


_NO_TOKENS: tuple[None, ...] = (None,) * len(_TOKENS)


def _token_values(u: Usage | None) -> tuple[int | None, ...]:
    # Spelled out rather than getattr over _TOKENS: this runs for every row on the write path.
    if u is None:
        return _NO_TOKENS
    return (
        u.input_tokens,
        u.output_tokens,
        u.cached_input_tokens,
        u.cache_write_tokens,
        u.reasoning_tokens,
    )


def request_row(record: RequestRecord) -> tuple[Any, ...]:
    """One ``requests`` row, in ``REQUEST_COLUMNS`` order; JSON columns as text."""
    r = record
    return (
        r.request_id, r.started_at, r.route, r.task, r.selected_by, r.endpoint, r.streamed,
        r.status, r.http_status, r.failure, r.error, r.final_model, r.final_reported_model,
        r.final_fingerprint, r.policy_hash, r.policy_version, r.client_key_id, r.confidence,
        r.escalations, *_token_values(r.usage), r.cost_usd, r.price_unknown, r.latency_ms,
        r.ttft_ms, r.attempt_count, _dumps(r.metadata),
        None if r.decision is None else _dumps(r.decision), r.prompt, r.answer,
    )  # fmt: skip


def attempt_rows(record: RequestRecord) -> list[tuple[Any, ...]]:
    """The ``attempts`` rows of one record, in ``ATTEMPT_COLUMNS`` order."""
    return [_attempt_row(record.request_id, seq, a) for seq, a in enumerate(record.attempts)]


def _attempt_row(rid: str, seq: int, a: Attempt) -> tuple[Any, ...]:
    return (
        rid, seq, a.model, a.provider, a.model_id, a.tier, a.started_ms, a.latency_ms,
        a.ttft_ms, a.outcome, a.failure, a.status, a.message, a.retry_after_s,
        a.reported_model, a.fingerprint, *_token_values(a.usage), a.cost_usd,
        a.price_known, a.confidence,
    )  # fmt: skip


def unique(batch: Iterable[RequestRecord]) -> list[RequestRecord]:
    """The first record of each request id: a batch may repeat one (a replayed spool)."""
    seen: set[str] = set()
    out = []
    for record in batch:
        if record.request_id not in seen:
            seen.add(record.request_id)
            out.append(record)
    return out


def _usage(row: Row) -> dict[str, int] | None:
    if row["input_tokens"] is None:
        return None
    return {name: row[name] or 0 for name in _TOKENS}


def _loads(value: Any) -> Any:
    return None if value is None else orjson.loads(value)


def attempt_dict(row: Row) -> dict[str, Any]:
    """An ``attempts`` row in the shape of ``Attempt.to_dict()``."""
    data = {k: row[k] for k in ATTEMPT_COLUMNS if k not in _NOT_RECORD_FIELDS}
    for name in _ATTEMPT_BOOLS:
        data[name] = bool(data[name])
    data["usage"] = _usage(row)
    return data


def request_dict(row: Row) -> dict[str, Any]:
    """A ``requests`` row in the shape of ``RequestRecord.to_dict()`` without the attempts, plus
    ``attempt_count`` (kept so a listing can show it without reading the attempts)."""
    data = {k: row[k] for k in REQUEST_COLUMNS if k not in _TOKENS}
    for name in _REQUEST_BOOLS:
        data[name] = bool(data[name])
    data["metadata"] = _loads(data["metadata"]) or {}
    data["decision"] = _loads(data["decision"])
    data["usage"] = _usage(row)
    return data


def record_dict(
    row: Row,
    attempts: Iterable[Row],
    feedback: Iterable[Any],
) -> dict[str, Any]:
    """The whole stored record: ``RequestRecord.to_dict()`` plus the feedback joined later."""
    data = request_dict(row)
    del data["attempt_count"]
    data["attempts"] = [attempt_dict(a) for a in sorted(attempts, key=lambda a: a["seq"])]
    data["feedback"] = [dict(f) for f in feedback]
    return data
