"""Records in a SQLite file: the zero-setup store, safe for several gateway workers at once.

Every call runs on one dedicated thread that owns the connection (sqlite3 connections are
bound to the thread that made them, and a single thread serialises this process's use of the
file), so the event loop never waits on disk or on a lock held by another process.

Durability and concurrency settings, and why:
- WAL journal: readers never block the writer and vice versa; several processes share it.
- ``synchronous=NORMAL``: in WAL mode a commit survives a process crash; only an OS crash or
  power loss can drop the last transactions. That trade is what makes ~1 fsync per checkpoint
  instead of per batch possible, and the gateway's records are telemetry, not ledger entries.
- ``busy_timeout``: a write waits this long for another process's lock, then fails, so the
  writer can spool the batch instead of hanging (keep it below the writer's write timeout).
- Writes take ``BEGIN IMMEDIATE``: the write lock up front, so two writers never deadlock
  upgrading a read lock.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from itertools import chain
from pathlib import Path
from typing import Any, Literal, TypeVar

from modelroute.outcomes.outcome import Outcome, OutcomeSource
from modelroute.records import rollups
from modelroute.records.derived import DERIVED_COLUMNS
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
    V5_COLUMNS,
    RowEncoder,
    derived_from_row,
    listing_dict,
    request_dict,
    stats_ids,
)

T = TypeVar("T")


def _insert_sql(table: str, columns: tuple[str, ...], key: str, rows: int) -> str:
    one = f"({', '.join('?' * len(columns))})"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * rows)} "
        # Not INSERT OR IGNORE: that would also swallow NOT NULL violations, silently losing rows.
        f"ON CONFLICT ({key}) DO NOTHING"
    )


# Several rows per statement: sqlite3 releases the GIL around every statement step, and under
# a busy event loop each re-acquisition can wait a whole switch interval. 50 rows per step cut
# those hand-offs fiftyfold (measured: ~1.6x records/s through RecordWriter under load).
_ROWS_PER_STATEMENT = 50
_INSERTS = {
    "requests": (
        _insert_sql("requests", REQUEST_COLUMNS, "request_id", _ROWS_PER_STATEMENT),
        _insert_sql("requests", REQUEST_COLUMNS, "request_id", 1),
    ),
}
_INSERT_STATS = "INSERT INTO planner_stats VALUES (?, ?) ON CONFLICT (stats_id) DO NOTHING"
_REASON = REQUEST_COLUMNS.index("decision_reason")


def _values(n: int) -> str:
    return f"VALUES ({', '.join('?' * n)})"


_ROLLUP_UPSERTS = {
    grain: (
        rollups.upsert_sql(
            rollups.table("rollup", grain), rollups.ROLLUP_COLUMNS, 3,
            _values(len(rollups.ROLLUP_COLUMNS)),
        ),
        rollups.upsert_sql(
            rollups.table("rejections", grain), rollups.REJECTION_COLUMNS, 4,
            _values(len(rollups.REJECTION_COLUMNS)),
        ),
    )
    for grain in rollups.WIDTHS
}  # fmt: skip
_POLICY_UPSERT = rollups.upsert_sql(
    "policy_traffic", rollups.POLICY_COLUMNS, 1, _values(len(rollups.POLICY_COLUMNS))
)
_BACKFILL = rollups.backfill_sql("sqlite")


def _add_rollup(db: sqlite3.Connection, rollup: Rollup) -> None:
    """Add a batch's rollup to the stored one: one upsert per touched key."""
    if not rollup.records:
        return
    for grain, (figures, rejections) in _ROLLUP_UPSERTS.items():
        db.executemany(figures, rollup.rows(grain))
        db.executemany(rejections, rollup.rejection_rows(grain))
    db.executemany(_POLICY_UPSERT, rollup.policy_rows())


def _insert(
    db: sqlite3.Connection, table: str, rows: list[tuple[Any, ...]], give_way: bool
) -> None:
    many, one = _INSERTS[table]
    whole = len(rows) - len(rows) % _ROWS_PER_STATEMENT
    for i in range(0, whole, _ROWS_PER_STATEMENT):
        db.execute(many, list(chain.from_iterable(rows[i : i + _ROWS_PER_STATEMENT])))
        if give_way:
            _yield()
    db.executemany(one, rows[whole:])


def _yield() -> None:
    """Let the event loop run now if it is waiting: drop the GIL and give up the CPU.

    The writer shares the gateway's core. Without this, a request arriving while a batch is
    prepared waits for the rest of the writer's scheduler slice (milliseconds), which is most
    of the gateway's p99 at low concurrency; with it, at most one slice of rows.

    Only while the writer keeps up: every yield hands the CPU over, and under full load the
    GIL comes back a switch interval later. Yielding with records waiting behind the batch
    let the queue grow without bound (measured at full load: 10,000 queued and spilling to
    the spool, with the collector's passes over them reaching 80 ms)."""
    os.sched_yield()


_ROWS_PER_YIELD = 8  # ~0.1 ms of row building between chances for the loop to run
_ID_CHUNK = 500  # well under SQLite's bound-parameter limit
_FOLD_PAGE = 1000
_BULK_OUTCOMES = 10_000  # outcomes in one call above which the import gets a larger page cache
_BULK_CACHE_KB = 65_536

# Nearest-rank percentiles with window functions: the smallest latency whose rank in its group
# reaches p × group size. PostgreSQL's percentile_disc gives the same value.
_STATS = """
WITH r AS (
  SELECT route, final_model, latency_ms, status, cost_usd,
         ROW_NUMBER() OVER (PARTITION BY route, final_model ORDER BY latency_ms) AS rn,
         COUNT(*) OVER (PARTITION BY route, final_model) AS n
  FROM requests WHERE started_at >= ?)
SELECT route, final_model AS model, COUNT(*) AS requests,
       SUM(status != 'ok') AS errors, SUM(cost_usd) AS spend_usd,
       MIN(CASE WHEN rn >= 0.5 * n THEN latency_ms END) AS p50_latency_ms,
       MIN(CASE WHEN rn >= 0.95 * n THEN latency_ms END) AS p95_latency_ms
FROM r GROUP BY route, final_model
"""
_FEEDBACK_STATS = """
SELECT r.route, r.final_model AS model, AVG(f.score) AS quality, COUNT(*) AS feedback
FROM feedback f JOIN requests r ON r.request_id = f.request_id
WHERE r.started_at >= ? GROUP BY r.route, r.final_model
"""
_QUALITY = """
SELECT r.route, r.final_model, r.final_reported_model, AVG(f.score), COUNT(f.score)
FROM feedback f JOIN requests r ON r.request_id = f.request_id
WHERE r.started_at >= ? AND f.score IS NOT NULL
GROUP BY r.route, r.final_model, r.final_reported_model
"""
_FEEDBACK_COLUMNS = "id, score, label, source, comment, created_at"
_INSERT_OUTCOME = _insert_sql("outcomes", schema.OUTCOME_COLUMNS, "outcome_id", 1)
_REPLACE_OUTCOME = _INSERT_OUTCOME.replace(
    "ON CONFLICT (outcome_id) DO NOTHING", schema.outcome_conflict(True)
)
_ADD_FEEDBACK = schema.feedback_sql(lambda n: f"?{n}")
_RAISE_ALERT = schema.raise_alert_sql(lambda n: f"?{n}")
_REMEMBER_POLICY = schema.policy_sql(lambda n: f"?{n}")
_ADD_SNAPSHOT, _PRUNE_SNAPSHOTS = schema.snapshot_sql(lambda n: f"?{n}")


class SqliteStore:
    dialect: Literal["sqlite"] = "sqlite"

    def __init__(self, path: str | Path, *, busy_timeout_s: float = 1.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._encoder = RowEncoder()  # used on the store's thread only

    def __repr__(self) -> str:
        return f"SqliteStore({str(self.path)!r})"

    async def _call(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            raise RuntimeError(f"{self!r} is not open")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, partial(fn, *args))

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise RuntimeError(f"{self!r} is not open")
        return self._conn

    # --- lifecycle --------------------------------------------------------------------------

    async def open(self) -> None:
        if self._executor is not None:
            return
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="modelroute-sqlite")
        try:
            await self._call(self._open)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, nothing implicit.
        conn = sqlite3.connect(self.path, isolation_level=None)
        conn.row_factory = sqlite3.Row
        # A generous wait while opening: another worker may be migrating the same file.
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        self._conn = conn
        self._migrate(None)  # foreign keys still off: a migration may swap a referenced table
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")

    def _migrate(self, target: int | None) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # one migrator at a time across processes
        try:
            db.execute(schema.render(schema.BOOTSTRAP, "sqlite"))
            current = db.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations")
            for version, statements in schema.pending(current.fetchone()[0], "sqlite", target):
                for statement in statements:
                    if statement == schema.FOLD:
                        self._fold()
                    elif statement == schema.DERIVE:
                        self._derive()
                    elif statement == schema.ROLLUP:
                        self._backfill()
                    else:
                        db.execute(statement)
                db.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version, time.time()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _fold(self) -> None:
        """Version 3 to 4: each request row and its attempt rows become one row of
        requests_v4, a page at a time (inside the migration's transaction)."""
        db, after = self._db, ""
        columns = ", ".join(V5_COLUMNS)
        insert = f"INSERT INTO requests_v4 ({columns}) VALUES ({', '.join('?' * len(V5_COLUMNS))})"
        kept = [REQUEST_COLUMNS.index(c) for c in V5_COLUMNS]
        while True:
            page = db.execute(
                "SELECT * FROM requests WHERE request_id > ? ORDER BY request_id LIMIT ?",
                (after, _FOLD_PAGE),
            ).fetchall()
            if not page:
                return
            ids = [row["request_id"] for row in page]
            marks = ", ".join("?" * len(ids))
            attempts: dict[str, list[sqlite3.Row]] = {}
            for a in db.execute(f"SELECT * FROM attempts WHERE request_id IN ({marks})", ids):
                attempts.setdefault(a["request_id"], []).append(a)
            stats: dict[str, str] = {}
            rows = [
                self._encoder.row(legacy.record(row, attempts.get(row["request_id"], ())), stats)
                for row in page
            ]
            db.executemany(insert, [[row[i] for i in kept] for row in rows])
            after = ids[-1]

    def _derive(self) -> None:
        """Version 6 to 7: the derived columns of every stored row, a page at a time (inside
        the migration's transaction)."""
        db, after = self._db, ""
        update = (
            f"UPDATE requests SET {', '.join(f'{c} = ?' for c in DERIVED_COLUMNS)} "
            "WHERE request_id = ?"
        )
        while True:
            page = db.execute(
                "SELECT request_id, final_model, body FROM requests WHERE request_id > ? "
                "ORDER BY request_id LIMIT ?",
                (after, _FOLD_PAGE),
            ).fetchall()
            if not page:
                return
            db.executemany(update, [(*derived_from_row(r), r["request_id"]) for r in page])
            after = page[-1]["request_id"]

    def _backfill(self) -> int:
        """Fill the (empty) rollups from every stored row, set-based (inside the caller's
        transaction); returns how many rows were added up."""
        db = self._db
        for statement in _BACKFILL:
            db.execute(statement)
        return int(
            db.execute("SELECT COALESCE(SUM(requests), 0) FROM policy_traffic").fetchone()[0]
        )

    async def rebuild_rollups(self) -> int:
        """Forget the rollups and add them up again from every stored row (rows loaded
        around the writer, a repair); returns how many rows were added up."""
        return await self._call(self._rebuild_rollups)

    def _rebuild_rollups(self) -> int:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            for name in rollups.TABLES:
                db.execute(f"DELETE FROM {name}")
            total = self._backfill()
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return total

    async def close(self) -> None:
        if self._executor is None:
            return
        await self._call(self._close)
        self._executor.shutdown(wait=False)
        self._executor = None

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def schema_version(self) -> int:
        return await self._call(
            self._scalar, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations"
        )

    def _scalar(self, sql: str, *params: Any) -> Any:
        return self._db.execute(sql, params).fetchone()[0]

    async def read_sql(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._call(self._tuples, sql, list(params))

    def _tuples(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        cursor = self._db.cursor()
        cursor.row_factory = None  # plain tuples
        return cursor.execute(sql, params).fetchall()

    # --- drift alerts -----------------------------------------------------------------------

    async def raise_alerts(self, alerts: Mapping[str, tuple[str, str]]) -> set[str]:
        rows = [(key, kind, time.time(), evidence) for key, (kind, evidence) in alerts.items()]
        return await self._call(self._raise_alerts, rows) if rows else set()

    def _raise_alerts(self, rows: list[tuple[str, str, float, str]]) -> set[str]:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            new = {found[0] for row in rows for found in db.execute(_RAISE_ALERT, row)}
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return new

    async def raised_alerts(self) -> dict[str, str]:
        rows = await self.read_sql("SELECT condition, kind FROM drift_alerts")
        return {condition: kind for condition, kind in rows}

    async def clear_alerts(self, conditions: Iterable[str]) -> int:
        keys = [(key,) for key in conditions]
        return await self._call(self._clear_alerts, keys) if keys else 0

    def _clear_alerts(self, keys: list[tuple[str]]) -> int:
        before = self._db.total_changes
        self._db.executemany("DELETE FROM drift_alerts WHERE condition = ?", keys)
        return self._db.total_changes - before

    # --- the dashboard's policies and snapshots --------------------------------------------

    async def remember_policy(
        self, policy_hash: str, version: str | None, source: str, text: str
    ) -> bool:
        params = (policy_hash, version, source, text, time.time())
        return await self._call(self._remember_policy, params)

    def _remember_policy(self, params: tuple[Any, ...]) -> bool:
        return self._db.execute(_REMEMBER_POLICY, params).fetchone() is not None

    async def add_snapshot(
        self, kind: str, computed_at: float, took_s: float, headline: str, data: str, text: str
    ) -> None:
        await self._call(self._add_snapshot, (kind, computed_at, took_s, headline, data, text))

    def _add_snapshot(self, params: tuple[Any, ...]) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.execute(_ADD_SNAPSHOT, params)
            db.execute(_PRUNE_SNAPSHOTS, params[:1])
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    # --- writing ----------------------------------------------------------------------------

    async def write(self, batch: list[RequestRecord], *, backlog: int = 0) -> None:
        if not batch:
            return
        try:
            await self._call(self._write, batch, backlog == 0)
        # A constraint, or a value sqlite3 cannot bind (an int past 64 bits, an unknown type);
        # "database is locked" and I/O errors are OperationalError, and stay retryable.
        except (sqlite3.IntegrityError, sqlite3.InterfaceError, OverflowError, TypeError) as exc:
            raise RecordRejected(str(exc)) from exc

    def _write(self, batch: list[RequestRecord], give_way: bool) -> None:
        # Rows and their rollup are built before taking the lock: other processes wait only
        # for the inserts and the rollup's upserts.
        rows: list[tuple[Any, ...]] = []
        added: list[Contribution] = []
        stats: dict[str, str] = {}
        encode = self._encoder.row
        for i, r in enumerate(schema.unique(batch), 1):
            row = encode(r, stats)
            rows.append(row)
            added.append(contribution(r, row[_REASON]))
            if give_way and i % _ROWS_PER_YIELD == 0:
                _yield()
        rollup = Rollup().extend(added)
        while not self._store(rows, stats, rollup, give_way):
            # Some were stored already (a replayed spool): the transaction was rolled back;
            # store the others, with the rollup of those only.
            stored = self._stored_ids([row[0] for row in rows])
            kept = [i for i, row in enumerate(rows) if row[0] not in stored]
            rows = [rows[i] for i in kept]
            rollup = Rollup().extend(added[i] for i in kept)
            added = [added[i] for i in kept]

    def _store(
        self,
        rows: list[tuple[Any, ...]],
        stats: dict[str, str],
        rollup: Rollup,
        give_way: bool,
    ) -> bool:
        """Insert rows and add their rollup in one transaction; False (rolled back) when some
        row was stored already, since the rollup would then count it twice."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if stats:
                db.executemany(_INSERT_STATS, stats.items())
            # ON CONFLICT DO NOTHING: a request id already stored (a replayed spool) is skipped,
            # and with everything in one row there is nothing else to keep in step with it.
            before = db.total_changes
            _insert(db, "requests", rows, give_way)
            if db.total_changes - before != len(rows):
                db.execute("ROLLBACK")
                return False
            _add_rollup(db, rollup)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        return True

    def _stored_ids(self, ids: list[str]) -> set[str]:
        sql = "SELECT request_id FROM requests"
        return {
            row[0]
            for i in range(0, len(ids), _ID_CHUNK)
            for row in self._in(sql, "request_id", ids[i : i + _ID_CHUNK])
        }

    async def add_feedback(
        self,
        request_id: str,
        score: float | None = None,
        label: str | None = None,
        source: str | None = None,
        comment: str | None = None,
    ) -> bool:
        params = (request_id, score, label, source, comment, time.time())
        return await self._call(self._add_feedback, params)

    def _add_feedback(self, params: tuple[Any, ...]) -> bool:
        return self._db.execute(_ADD_FEEDBACK, params).rowcount == 1

    async def add_outcomes(self, outcomes: Sequence[Outcome], *, replace: bool = False) -> int:
        if not outcomes:
            return 0
        return await self._call(self._add_outcomes, outcomes, replace)

    def _add_outcomes(self, outcomes: Sequence[Outcome], replace: bool) -> int:
        rows = schema.outcome_rows(outcomes, last=replace)
        db = self._db
        before = db.total_changes
        cache = self._scalar("PRAGMA cache_size")
        if len(rows) > _BULK_OUTCOMES:
            # five B-trees take random inserts (ids are hashes): with the default 2 MB page
            # cache a large import spends a third of its time re-reading evicted pages
            db.execute(f"PRAGMA cache_size = -{_BULK_CACHE_KB}")
        db.execute("BEGIN IMMEDIATE")
        try:
            if replace:  # an overwrite changes a row too: count the new ones beforehand
                before += len(self._outcome_ids([r[0] for r in rows]))
            # one statement prepared once, stepped per row, all in one transaction: an import
            # of hundreds of thousands of outcomes is one commit
            db.executemany(_REPLACE_OUTCOME if replace else _INSERT_OUTCOME, rows)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.execute(f"PRAGMA cache_size = {int(cache)}")
        return db.total_changes - before

    # --- reading ----------------------------------------------------------------------------

    async def outcome_ids(self, ids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(ids))
        return await self._call(self._outcome_ids, wanted)

    def _outcome_ids(self, wanted: list[str]) -> set[str]:
        sql = "SELECT outcome_id FROM outcomes"
        return {
            row[0]
            for i in range(0, len(wanted), _ID_CHUNK)
            for row in self._in(sql, "outcome_id", wanted[i : i + _ID_CHUNK])
        }

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
            lambda n: "?", source=source, route=route, task=task, model=model, run=run,
            since=since, limit=limit,
        )  # fmt: skip
        return await self._call(self._outcomes, sql, params)

    def _outcomes(self, sql: str, params: list[Any]) -> list[Outcome]:
        return [schema.outcome_from(row) for row in self._db.execute(sql, params)]

    async def outcome_scores(
        self,
        by: OutcomeScope = "route",
        *,
        source: OutcomeSource | None = None,
        since: float | None = None,
    ) -> list[ScoreRow]:
        sql, params = schema.outcome_scores_sql(lambda n: "?", by, source, since)
        return await self._call(self._scores, sql, params)

    def _scores(self, sql: str, params: list[Any]) -> list[ScoreRow]:
        cursor = self._db.cursor()
        cursor.row_factory = None  # plain tuples: no sqlite3.Row per outcome
        return cursor.execute(sql, params).fetchall()

    async def get(self, request_id: str) -> dict[str, Any] | None:
        return await self._call(self._get, request_id)

    def _get(self, request_id: str) -> dict[str, Any] | None:
        row = self._db.execute(
            f"SELECT {schema.REQUEST_SELECT} FROM requests WHERE request_id = ?", (request_id,)
        )
        found = self._records(row.fetchall())
        return found[0] if found else None

    async def get_many(self, request_ids: Sequence[str]) -> list[dict[str, Any]]:
        return await self._call(self._get_many, list(dict.fromkeys(request_ids)))

    def _get_many(self, wanted: list[str]) -> list[dict[str, Any]]:
        sql = f"SELECT {schema.REQUEST_SELECT} FROM requests"
        return [
            record
            for i in range(0, len(wanted), _ID_CHUNK)
            for record in self._records(self._in(sql, "request_id", wanted[i : i + _ID_CHUNK]))
        ]

    def _records(self, rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
        """Whole records for request rows: their planner statistics and feedback joined."""
        ids = [row["request_id"] for row in rows]
        wanted = list(stats_ids(rows))
        stats = {
            r[0]: r[1]
            for i in range(0, len(wanted), _ID_CHUNK)
            for r in self._in(
                "SELECT stats_id, stats FROM planner_stats", "stats_id", wanted[i : i + _ID_CHUNK]
            )
        }
        feedback: dict[str, list[dict[str, Any]]] = {}
        for i in range(0, len(ids), _ID_CHUNK):
            sql = f"SELECT request_id, {_FEEDBACK_COLUMNS} FROM feedback"
            for f in self._in(sql, "request_id", ids[i : i + _ID_CHUNK], "ORDER BY id"):
                entry = dict(f)
                feedback.setdefault(entry.pop("request_id"), []).append(entry)
        out = []
        for row in rows:
            data = request_dict(row, stats)
            data["feedback"] = feedback.get(row["request_id"], [])
            out.append(data)
        return out

    def _in(self, sql: str, column: str, values: list[str], tail: str = "") -> list[sqlite3.Row]:
        marks = ", ".join("?" * len(values))
        return self._db.execute(f"{sql} WHERE {column} IN ({marks}) {tail}", values).fetchall()

    async def scan(
        self, *, since: float | None = None, route: str | None = None, page_size: int = 1000
    ) -> AsyncIterator[list[dict[str, Any]]]:
        after: tuple[float, str] = (float("-inf"), "")
        while True:
            page, after = await self._call(self._page, after, since, route, page_size)
            if not page:
                return
            yield page

    def _page(
        self, after: tuple[float, str], since: float | None, route: str | None, size: int
    ) -> tuple[list[dict[str, Any]], tuple[float, str]]:
        sql, params = schema.page_sql(lambda n: "?", since, route)
        rows = self._fetch(sql, *after, *params, size)
        if not rows:
            return [], after
        return self._records(rows), (rows[-1]["started_at"], rows[-1]["request_id"])

    async def query(
        self,
        route: str | None = None,
        model: str | None = None,
        since: float | None = None,
        failed: bool = False,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        sql, params = schema.query_sql(lambda n: "?", route, model, since, failed, limit)
        rows = await self._call(self._fetch, sql, *params)
        return [listing_dict(row) for row in rows]

    def _fetch(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        return self._db.execute(sql, params).fetchall()

    async def count(self) -> int:
        return int(await self._call(self._scalar, "SELECT COUNT(*) FROM requests"))

    async def ids(self) -> set[str]:
        rows = await self._call(self._fetch, "SELECT request_id FROM requests")
        return {row[0] for row in rows}

    async def stats(self, since: float | None = None) -> list[dict[str, Any]]:
        start = since if since is not None else float("-inf")
        main = await self._call(self._fetch, _STATS, start)
        feedback = await self._call(self._fetch, _FEEDBACK_STATS, start)
        return merge_stats(map(dict, main), map(dict, feedback))

    async def quality(self, since: float | None = None) -> dict[QualityKey, tuple[float, int]]:
        start = since if since is not None else float("-inf")
        rows = await self._call(self._fetch, _QUALITY, start)
        return {(r[0], r[1], r[2]): (float(r[3]), int(r[4])) for r in rows}

    async def export(self, path: str | Path, format: ExportFormat = "jsonl") -> int:
        return await self._call(self._export, Path(path), format)

    def _export(self, path: Path, format: ExportFormat, page_size: int = 1000) -> int:
        out = ExportFile(path, format)
        try:
            after: tuple[float, str] = (float("-inf"), "")
            while True:
                page, after = self._page(after, None, None, page_size)
                if not page:
                    return out.count
                out.write(page)
        finally:
            out.close()
