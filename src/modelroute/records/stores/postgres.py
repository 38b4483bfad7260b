"""Records in PostgreSQL through asyncpg: the store for several gateway replicas.

A batch is one statement with two parameters: the request rows and the planner statistics they
refer to, as JSON arrays, which ``json_populate_recordset`` turns back into typed rows by
column name; ``ON CONFLICT DO NOTHING`` skips what is stored already; the same statement adds
the batch's rollup for the dashboard (a batch some of whose records were stored already undoes
itself and goes in two steps, counting only its new records). One round trip, one implicit
transaction, the same prepared statement every time, and idempotent (a replayed spool
stores nothing twice). The row layout is ``body.py``'s, shared with SQLite.

Why JSON rather than typed arrays (``unnest($1::text[], ...)``) or COPY: asyncpg encodes every
array element in Python on the event loop, ~0.3 us a value; a batch of 500 held the loop for
10-15 ms. One JSON text built by orjson in a worker thread holds it for ~1.5 ms, the parsing
moves to the server (another core here), and throughput is the same (measured: 16k vs 17k
records/s, client CPU 14 vs 25 us a record). Floats survive the trip exactly (shortest
round-trip repr); non-finite ones are sent as PostgreSQL's own spellings.

Writes must fail fast rather than hang (the writer then spools the batch): every pooled
connection runs with ``lock_timeout`` and ``statement_timeout`` set to ``write_timeout_s``,
so a table locked by someone else makes ``write`` raise within that time. Reads that may
legitimately take longer (stats, export) raise the limit for their own transaction only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Literal, NamedTuple
from urllib.parse import parse_qs, urlsplit

import asyncpg
import orjson

from modelroute.outcomes.outcome import Outcome, OutcomeSource
from modelroute.records import rollups
from modelroute.records.record import RequestRecord
from modelroute.records.rollups import Contribution, Rollup, contribution
from modelroute.records.stores import legacy, schema
from modelroute.records.stores.base import (
    ExportFile,
    ExportFormat,
    OutcomeScope,
    QualityKey,
    RecordRejected,
    ScoreRow,
    merge_stats,
)
from modelroute.records.stores.body import (
    REQUEST_COLUMNS,
    RowEncoder,
    derived_from_row,
    listing_dict,
    request_dict,
    stats_ids,
)

_MIGRATION_LOCK = 0x6D6F64656C  # pg_advisory_xact_lock key: one migrator at a time

_REQUEST_COLS = ", ".join(REQUEST_COLUMNS)
# The rollup tables in the order of ``_INSERT``'s parameters 3 to 7.
_ROLLUP_PARAMETERS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    *(
        (rollups.table(kind, grain), columns, key)
        for grain in rollups.WIDTHS
        for kind, columns, key in (
            ("rollup", rollups.ROLLUP_COLUMNS, 3),
            ("rejections", rollups.REJECTION_COLUMNS, 4),
        )
    ),
    ("policy_traffic", rollups.POLICY_COLUMNS, 1),
)
_STORED = (
    "WITH stats AS (INSERT INTO planner_stats (stats_id, stats) SELECT stats_id, stats "
    "FROM json_populate_recordset(NULL::planner_stats, $2::json) "
    "ON CONFLICT (stats_id) DO NOTHING), "
    f"stored AS (INSERT INTO requests ({_REQUEST_COLS}) SELECT {_REQUEST_COLS} "
    "FROM json_populate_recordset(NULL::requests, $1::json) "
    "ON CONFLICT (request_id) DO NOTHING RETURNING request_id)"
)
# The text of the error that undoes ``_INSERT`` when some record was stored already.
_SOME_STORED = "some records were stored already"


def _upserts(first: int) -> list[str]:
    """The rollup's upserts from JSON rows, parameters ``first`` to ``first + 4``."""
    out = []
    for n, (name, columns, key) in enumerate(_ROLLUP_PARAMETERS, first):
        rows = f"SELECT {', '.join(columns)} FROM json_populate_recordset(NULL::{name}, ${n}::json)"
        upsert = rollups.upsert_sql(name, columns, key, rows, dialect="postgres")
        out.append(f"{name}_added AS ({upsert})")
    return out


def _insert_statement() -> str:
    """A batch in one statement: the rows (parameter 1) with the planner statistics they
    refer to (2) inserted, and the batch's rollup (3-7: each table's rows as JSON, in key
    order) added. When fewer rows than the batch's records (8) were inserted (some were stored
    already: a replayed spool), the statement fails, undoing all of it, and ``write`` stores
    the batch in two steps instead (``_INSERT_RETURNING``, then the new records' rollup)."""
    undo = f"CAST('{_SOME_STORED}: ' || n AS INT)"  # not a constant: raised only when reached
    return (
        f"{_STORED}, counted AS (SELECT COUNT(*) AS n FROM stored), {', '.join(_upserts(3))} "
        f"SELECT CASE WHEN n = $8::int THEN n ELSE {undo} END FROM counted"
    )


_INSERT = _insert_statement()
_INSERT_RETURNING = f"{_STORED} SELECT request_id FROM stored"
_ADD_ROLLUP = f"WITH {', '.join(_upserts(1))} SELECT 1"
_FLOATS = ("started_at", "latency_ms", "cost_usd")
_REASON = REQUEST_COLUMNS.index("decision_reason")
_BACKFILL = rollups.backfill_sql("postgres")


_NON_FINITE = (float("inf"), float("-inf"))
_FOLD_PAGE = 1000


class _Payload(NamedTuple):
    requests: str  # JSON arrays of row objects
    stats: str
    rollup: tuple[str, ...]  # ``_INSERT``'s parameters 3-7: the rollup when every record is new
    records: int  # how many (one per request id)
    added: list[tuple[str, Contribution]]  # each record's id and contribution to the rollups


def _payload(encoder: RowEncoder, batch: list[RequestRecord]) -> _Payload:
    """The batch as two JSON arrays of row objects (requests, planner statistics), and its
    rollup."""
    requests: list[dict[str, Any]] = []
    stats: dict[str, str] = {}
    rollup = Rollup()
    added: list[tuple[str, Contribution]] = []
    for record in schema.unique(batch):
        values = encoder.row(record, stats)
        added.append((record.request_id, contribution(record, values[_REASON])))
        rollup.add(added[-1][1])
        row = dict(zip(REQUEST_COLUMNS, values, strict=True))
        row["body"] = orjson.Fragment(row["body"])  # JSON already: nested, not re-encoded
        requests.append(_finite(row, _FLOATS))
    planner = [{"stats_id": k, "stats": orjson.Fragment(v)} for k, v in stats.items()]
    return _Payload(
        orjson.dumps(requests).decode(),
        orjson.dumps(planner).decode(),
        _rollup_payload(rollup),
        len(requests),
        added,
    )


def _rollup_payload(rollup: Rollup) -> tuple[str, ...]:
    tables = {
        **{rollups.table("rollup", g): rollup.rows(g) for g in rollups.WIDTHS},
        **{rollups.table("rejections", g): rollup.rejection_rows(g) for g in rollups.WIDTHS},
        "policy_traffic": rollup.policy_rows(),
    }
    return tuple(
        orjson.dumps([dict(zip(columns, v, strict=True)) for v in tables[name]]).decode()
        for name, columns, _ in _ROLLUP_PARAMETERS
    )


def _finite(row: dict[str, Any], floats: tuple[str, ...]) -> dict[str, Any]:
    # JSON has no NaN or infinity (orjson would write null); PostgreSQL's float8 reads these.
    for column in floats:
        value = row[column]
        if value is not None and (value != value or value in _NON_FINITE):
            row[column] = str(value).replace("inf", "Infinity").replace("nan", "NaN")
    return row


# percentile_disc is nearest-rank, the same definition the SQLite store computes by hand.
_STATS = """
SELECT route, final_model AS model, COUNT(*) AS requests,
       COUNT(*) FILTER (WHERE status <> 'ok') AS errors, SUM(cost_usd) AS spend_usd,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_latency_ms,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_latency_ms
FROM requests WHERE started_at >= $1 GROUP BY route, final_model
"""
_FEEDBACK_STATS = """
SELECT r.route, r.final_model AS model, AVG(f.score) AS quality, COUNT(*) AS feedback
FROM feedback f JOIN requests r ON r.request_id = f.request_id
WHERE r.started_at >= $1 GROUP BY r.route, r.final_model
"""
_QUALITY = """
SELECT r.route, r.final_model, r.final_reported_model, AVG(f.score), COUNT(f.score)
FROM feedback f JOIN requests r ON r.request_id = f.request_id
WHERE r.started_at >= $1 AND f.score IS NOT NULL
GROUP BY r.route, r.final_model, r.final_reported_model
"""
_FEEDBACK_COLUMNS = "id, score, label, source, comment, created_at"
_OUTCOME_COLS = ", ".join(schema.OUTCOME_COLUMNS)
# Outcomes arrive in bulk (an import, an evaluation run): COPY into a temporary table, then one
# INSERT that skips the ids already stored. COPY is the fastest way in, but has no ON CONFLICT.
_OUTCOMES_INCOMING = (
    "CREATE TEMPORARY TABLE outcomes_incoming (LIKE outcomes INCLUDING DEFAULTS) ON COMMIT DROP"
)
_INSERT_OUTCOMES = (
    f"INSERT INTO outcomes ({_OUTCOME_COLS}) SELECT {_OUTCOME_COLS} FROM outcomes_incoming "
)
# (xmax = 0): the row was inserted, not overwritten
_REPLACE_OUTCOMES = (
    f"{_INSERT_OUTCOMES}{schema.outcome_conflict(True)} RETURNING (xmax = 0) AS inserted"
)
_INSERT_OUTCOMES += schema.outcome_conflict(False)
_ADD_FEEDBACK = schema.feedback_sql(lambda n: f"${n}")
_RAISE_ALERT = schema.raise_alert_sql(lambda n: f"${n}")
_REMEMBER_POLICY = schema.policy_sql(lambda n: f"${n}")
_ADD_SNAPSHOT, _PRUNE_SNAPSHOTS = schema.snapshot_sql(lambda n: f"${n}")


_SSLMODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")


def check_url(url: str) -> None:
    """Refuse a URL no connection attempt could use (a mistyped port, an unknown sslmode),
    so that it is an error at start-up rather than an outage that never ends. Messages never
    repeat the URL: it may carry a password."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise ValueError(f"unparseable PostgreSQL URL: {exc}") from None
    hosts = parts.netloc.rpartition("@")[2]
    for spec in hosts.split(","):
        port = spec.rpartition("]")[2] if spec.startswith("[") else spec
        _, colon, digits = port.rpartition(":")
        if colon and digits and not (digits.isdigit() and 0 < int(digits) < 65536):
            raise ValueError(f"bad port {digits!r} in the PostgreSQL URL")
    for mode in parse_qs(parts.query).get("sslmode", []):
        if mode not in _SSLMODES:
            choices = ", ".join(_SSLMODES)
            raise ValueError(f"bad sslmode {mode!r} in the PostgreSQL URL (one of {choices})")


class PostgresStore:
    dialect: Literal["postgres"] = "postgres"

    def __init__(
        self,
        url: str,
        *,
        min_size: int = 1,
        max_size: int = 4,
        write_timeout_s: float = 1.0,
        read_timeout_s: float = 60.0,
        connect_timeout_s: float = 2.0,
    ) -> None:
        check_url(url)
        self.url = url
        self.min_size, self.max_size = min_size, max_size
        self.write_timeout_s = write_timeout_s
        self.read_timeout_s = read_timeout_s
        self.connect_timeout_s = connect_timeout_s
        self._pool: asyncpg.Pool | None = None
        self._encoder = RowEncoder()

    def __repr__(self) -> str:
        return "PostgresStore(<url redacted>)"  # the URL may carry a password

    # --- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        if self._pool is not None:
            return
        conn = await asyncpg.connect(self.url, timeout=self.connect_timeout_s)
        try:
            await migrate(conn)
        finally:
            await conn.close()
        ms = str(int(self.write_timeout_s * 1000))
        self._pool = await asyncpg.create_pool(
            self.url,
            min_size=self.min_size,
            max_size=self.max_size,
            timeout=self.connect_timeout_s,
            # Client-side backstop in case the server-side timeouts cannot fire (network).
            command_timeout=self.read_timeout_s + 5,
            server_settings={"lock_timeout": ms, "statement_timeout": ms},
        )

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError(f"{self!r} is not open")
        return self._pool

    @asynccontextmanager
    async def _reading(self) -> AsyncIterator[asyncpg.pool.PoolConnectionProxy]:
        """A connection whose transaction may run up to ``read_timeout_s``."""
        async with self.pool.acquire() as conn, conn.transaction(readonly=True):
            ms = int(self.read_timeout_s * 1000)
            await conn.execute(f"SET LOCAL statement_timeout = {ms}")
            yield conn

    async def schema_version(self) -> int:
        async with self.pool.acquire() as conn:
            value = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        return int(value)

    async def read_sql(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._reading() as conn:
            # Planned for its parameters every time: asyncpg prepares statements, and the
            # generic plan PostgreSQL may switch to after five runs cannot know that one route
            # holds millions of rows and another ten (measured on 10 million records: drift's
            # twelve sample reads took 50 s, planned each time 7 s). No JIT: compiling took 2
            # of the 10 s of drift's aggregate over those records.
            await conn.execute("SET LOCAL plan_cache_mode = force_custom_plan")
            await conn.execute("SET LOCAL jit = off")
            rows = await conn.fetch(sql, *params)
        return [tuple(row) for row in rows]

    # --- drift alerts -----------------------------------------------------------------------

    async def raise_alerts(self, alerts: Mapping[str, tuple[str, str]]) -> set[str]:
        now = time.time()
        new: set[str] = set()
        async with self.pool.acquire() as conn, conn.transaction():
            for key, (kind, evidence) in alerts.items():
                found = await conn.fetchval(_RAISE_ALERT, key, kind, now, evidence)
                if found is not None:
                    new.add(found)
        return new

    async def raised_alerts(self) -> dict[str, str]:
        rows = await self.read_sql("SELECT condition, kind FROM drift_alerts")
        return {condition: kind for condition, kind in rows}

    async def clear_alerts(self, conditions: Iterable[str]) -> int:
        keys = list(conditions)
        if not keys:
            return 0
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM drift_alerts WHERE condition = ANY($1::text[])", keys
            )
        return int(status.rpartition(" ")[2])  # "DELETE <rows>"

    # --- writing ----------------------------------------------------------------------------

    async def write(self, batch: list[RequestRecord], *, backlog: int = 0) -> None:
        if not batch:
            return
        # Serialising the batch is CPU work: a worker thread does it, so the event loop keeps
        # the GIL every switch interval instead of waiting for the whole batch.
        try:
            payload = await asyncio.to_thread(_payload, self._encoder, batch)
        except TypeError as exc:  # orjson: a value JSON cannot carry
            raise RecordRejected(str(exc)) from exc
        async with self.pool.acquire() as conn:
            try:
                try:
                    await conn.execute(
                        _INSERT, payload.requests, payload.stats, *payload.rollup, payload.records
                    )
                except asyncpg.InvalidTextRepresentationError as exc:
                    if _SOME_STORED not in str(exc):
                        raise
                    await _store_partly(conn, payload)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
                raise RecordRejected(str(exc)) from exc

    async def rebuild_rollups(self) -> int:
        """Forget the rollups and add them up again from every stored row (rows loaded
        around the writer, a repair); returns how many rows were added up."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL statement_timeout = 0")
            await conn.execute(f"TRUNCATE {', '.join(rollups.TABLES)}")
            return await _backfill(conn)

    # --- the dashboard's policies and snapshots --------------------------------------------

    async def remember_policy(
        self, policy_hash: str, version: str | None, source: str, text: str
    ) -> bool:
        async with self.pool.acquire() as conn:
            found = await conn.fetchval(
                _REMEMBER_POLICY, policy_hash, version, source, text, time.time()
            )
        return found is not None

    async def add_snapshot(
        self, kind: str, computed_at: float, took_s: float, headline: str, data: str, text: str
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(_ADD_SNAPSHOT, kind, computed_at, took_s, headline, data, text)
            await conn.execute(_PRUNE_SNAPSHOTS, kind)

    async def add_feedback(
        self,
        request_id: str,
        score: float | None = None,
        label: str | None = None,
        source: str | None = None,
        comment: str | None = None,
    ) -> bool:
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                _ADD_FEEDBACK, request_id, score, label, source, comment, time.time()
            )
        return bool(status == "INSERT 0 1")

    async def add_outcomes(self, outcomes: Sequence[Outcome], *, replace: bool = False) -> int:
        if not outcomes:
            return 0
        rows = await asyncio.to_thread(partial(schema.outcome_rows, outcomes, last=replace))
        async with self.pool.acquire() as conn, conn.transaction():
            # a bulk import may take longer than a record batch is allowed to
            await conn.execute(f"SET LOCAL statement_timeout = {int(self.read_timeout_s * 1000)}")
            await conn.execute(_OUTCOMES_INCOMING)
            await conn.copy_records_to_table(
                "outcomes_incoming", records=rows, columns=schema.OUTCOME_COLUMNS
            )
            if replace:
                return sum(bool(r[0]) for r in await conn.fetch(_REPLACE_OUTCOMES))
            status = await conn.execute(_INSERT_OUTCOMES)
        return int(status.rpartition(" ")[2])  # "INSERT 0 <rows>"

    # --- reading ----------------------------------------------------------------------------

    async def outcome_ids(self, ids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(ids))
        async with self._reading() as conn:
            rows = await conn.fetch(
                "SELECT outcome_id FROM outcomes WHERE outcome_id = ANY($1::text[])", wanted
            )
        return {row[0] for row in rows}

    async def outcomes(
        self,
        *,
        source: OutcomeSource | None = None,
        route: str | None = None,
        task: str | None = None,
        model: str | None = None,
        run: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[Outcome]:
        sql, params = schema.outcomes_sql(
            lambda n: f"${n}", source=source, route=route, task=task, model=model, run=run,
            since=since, limit=limit,
        )  # fmt: skip
        async with self._reading() as conn:
            rows = await conn.fetch(sql, *params)
        return [schema.outcome_from(row) for row in rows]

    async def outcome_scores(
        self,
        by: OutcomeScope = "route",
        *,
        source: OutcomeSource | None = None,
        since: float | None = None,
    ) -> list[ScoreRow]:
        sql, params = schema.outcome_scores_sql(lambda n: f"${n}", by, source, since)
        async with self._reading() as conn:
            rows = await conn.fetch(sql, *params)
        return [tuple(row) for row in rows]

    async def get(self, request_id: str) -> dict[str, Any] | None:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"SELECT {schema.REQUEST_SELECT} FROM requests WHERE request_id = $1", request_id
            )
            found = await _records(conn, rows)
        return found[0] if found else None

    async def get_many(self, request_ids: Sequence[str]) -> list[dict[str, Any]]:
        async with self._reading() as conn:
            rows = await conn.fetch(
                f"SELECT {schema.REQUEST_SELECT} FROM requests WHERE request_id = ANY($1::text[])",
                list(dict.fromkeys(request_ids)),
            )
            return await _records(conn, rows)

    async def scan(
        self, *, since: float | None = None, route: str | None = None, page_size: int = 1000
    ) -> AsyncIterator[list[dict[str, Any]]]:
        sql, params = schema.page_sql(lambda n: f"${n}", since, route)
        after: tuple[float, str] = (float("-inf"), "")
        while True:
            async with self._reading() as conn:
                rows = await conn.fetch(sql, *after, *params, page_size)
                if not rows:
                    return
                page = await _records(conn, rows)
            after = (rows[-1]["started_at"], rows[-1]["request_id"])
            yield page

    async def query(
        self,
        route: str | None = None,
        model: str | None = None,
        since: float | None = None,
        failed: bool = False,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        sql, params = schema.query_sql(lambda n: f"${n}", route, model, since, failed, limit)
        async with self._reading() as conn:
            rows = await conn.fetch(sql, *params)
        return [listing_dict(row) for row in rows]

    async def count(self) -> int:
        async with self._reading() as conn:
            return int(await conn.fetchval("SELECT COUNT(*) FROM requests"))

    async def ids(self) -> set[str]:
        async with self._reading() as conn:
            return {row[0] for row in await conn.fetch("SELECT request_id FROM requests")}

    async def stats(self, since: float | None = None) -> list[dict[str, Any]]:
        start = since if since is not None else float("-inf")
        async with self._reading() as conn:
            main = await conn.fetch(_STATS, start)
            feedback = await conn.fetch(_FEEDBACK_STATS, start)
        return merge_stats(map(dict, main), map(dict, feedback))

    async def quality(self, since: float | None = None) -> dict[QualityKey, tuple[float, int]]:
        start = since if since is not None else float("-inf")
        async with self._reading() as conn:
            rows = await conn.fetch(_QUALITY, start)
        return {(r[0], r[1], r[2]): (float(r[3]), int(r[4])) for r in rows}

    async def export(self, path: str | Path, format: ExportFormat = "jsonl") -> int:
        out = ExportFile(path, format)
        try:
            async for page in self.scan():
                await asyncio.to_thread(out.write, page)
        finally:
            await asyncio.to_thread(out.close)
        return out.count


async def _records(conn: Any, rows: list[Any]) -> list[dict[str, Any]]:
    """Whole records for request rows: their planner statistics and feedback joined."""
    ids = [row["request_id"] for row in rows]
    stats = {
        r[0]: r[1]
        for r in await conn.fetch(
            "SELECT stats_id, stats FROM planner_stats WHERE stats_id = ANY($1::text[])",
            list(stats_ids(rows)),
        )
    }
    feedback: dict[str, list[dict[str, Any]]] = {}
    for f in await conn.fetch(
        f"SELECT request_id, {_FEEDBACK_COLUMNS} FROM feedback "
        "WHERE request_id = ANY($1::text[]) ORDER BY id",
        ids,
    ):
        entry = dict(f)
        feedback.setdefault(entry.pop("request_id"), []).append(entry)
    out = []
    for row in rows:
        data = request_dict(row, stats)
        data["feedback"] = feedback.get(row["request_id"], [])
        out.append(data)
    return out


async def _fold(conn: Any) -> None:
    """Version 3 to 4: each request row and its attempt rows become the new body column, a
    page at a time (inside the migration's transaction)."""
    encoder, after = RowEncoder(), ""
    body = REQUEST_COLUMNS.index("body")
    while True:
        page = await conn.fetch(
            "SELECT * FROM requests WHERE request_id > $1 ORDER BY request_id LIMIT $2",
            after,
            _FOLD_PAGE,
        )
        if not page:
            return
        ids = [row["request_id"] for row in page]
        attempts: dict[str, list[Any]] = {}
        for a in await conn.fetch("SELECT * FROM attempts WHERE request_id = ANY($1::text[])", ids):
            attempts.setdefault(a["request_id"], []).append(a)
        stats: dict[str, str] = {}
        bodies = [
            encoder.row(legacy.record(row, attempts.get(row["request_id"], ())), stats)[body]
            for row in page
        ]
        await conn.execute(
            "UPDATE requests AS r SET body = v.body::jsonb "
            "FROM unnest($1::text[], $2::text[]) AS v (id, body) WHERE r.request_id = v.id",
            ids,
            bodies,
        )
        after = ids[-1]


async def _derive(conn: Any) -> None:
    """Version 6 to 7: the derived columns of every stored row, a page at a time (inside the
    migration's transaction)."""
    after = ""
    while True:
        page = await conn.fetch(
            "SELECT request_id, final_model, body::text AS body FROM requests "
            "WHERE request_id > $1 ORDER BY request_id LIMIT $2",
            after,
            _FOLD_PAGE,
        )
        if not page:
            return
        values = list(zip(*(derived_from_row(row) for row in page), strict=True))
        await conn.execute(
            "UPDATE requests AS r SET task_key = v.task_key, decision_reason = v.reason, "
            "input_tokens = v.i, output_tokens = v.o, cached_input_tokens = v.c, "
            "cache_write_tokens = v.w FROM unnest($1::text[], $2::text[], $3::text[], "
            "$4::bigint[], $5::bigint[], $6::bigint[], $7::bigint[]) "
            "AS v (id, task_key, reason, i, o, c, w) WHERE r.request_id = v.id",
            [row["request_id"] for row in page],
            *(list(column) for column in values),
        )
        after = page[-1]["request_id"]


async def _store_partly(conn: Any, payload: _Payload) -> None:
    """A batch some of whose records were stored already: insert the others and add their
    rollup, in one transaction."""
    async with conn.transaction():
        new = {
            row[0] for row in await conn.fetch(_INSERT_RETURNING, payload.requests, payload.stats)
        }
        rollup = Rollup().extend(c for request_id, c in payload.added if request_id in new)
        if rollup.records:
            await conn.execute(_ADD_ROLLUP, *_rollup_payload(rollup))


async def _backfill(conn: Any) -> int:
    """Fill the (empty) rollups from every stored row, set-based (inside the caller's
    transaction); returns how many rows were added up."""
    # One-off aggregates over every row: no JIT (compiling 47 aggregates costs seconds), and
    # room to hash the groups in memory rather than in batches on disk.
    await conn.execute("SET LOCAL jit = off")
    await conn.execute("SET LOCAL work_mem = '256MB'")
    for statement in _BACKFILL:
        await conn.execute(statement)
    return int(await conn.fetchval("SELECT COALESCE(SUM(requests), 0) FROM policy_traffic"))


async def migrate(conn: Any, target: int | None = None) -> int:
    """Bring the database to ``target`` (the latest by default); returns the version reached.
    Runs in one transaction under an advisory lock so concurrent openers apply each step once."""
    async with conn.transaction():
        await conn.execute("SET LOCAL statement_timeout = 0")  # an index build may take long
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
        await conn.execute(schema.render(schema.BOOTSTRAP, "postgres"))
        current = await conn.fetchval("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
        for version, statements in schema.pending(current, "postgres", target):
            for statement in statements:
                if statement == schema.FOLD:
                    await _fold(conn)
                elif statement == schema.DERIVE:
                    await _derive(conn)
                elif statement == schema.ROLLUP:
                    await _backfill(conn)
                else:
                    await conn.execute(statement)
            await conn.execute(
                "INSERT INTO schema_migrations VALUES ($1, $2)", version, time.time()
            )
            current = version
    return int(current)
