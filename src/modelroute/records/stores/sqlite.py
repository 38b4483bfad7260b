"""Records in a SQLite file: the zero-setup store, safe for several gateway workers at once.

Every call runs on one dedicated thread that owns the connection (``sqlite_base.py``), so the
event loop never waits on disk or on a lock held by another process.

Durability and concurrency settings, and why:
- WAL journal: readers never block the writer and vice versa; several processes share it.
- ``synchronous=NORMAL``: in WAL mode a commit survives a process crash; only an OS crash or
  power loss can drop the last transactions. That trade is what makes ~1 fsync per checkpoint
  instead of per batch possible, and the gateway's records are telemetry, not ledger entries.
- ``busy_timeout``: a write waits this long for another process's lock, then fails, so the
  writer can spool the batch instead of hanging (keep it below the writer's write timeout).
- Writes take ``BEGIN IMMEDIATE``: the write lock up front, so two writers never deadlock
  upgrading a read lock.

The store is put together from parts, one responsibility each, all on that connection and
thread: this module opens, closes and writes records (with the rollups the dashboard reads);
``sqlite_migrate.py`` brings the file's tables up to date; ``sqlite_reads.py`` reads records;
``sqlite_outcomes.py`` keeps feedback and outcomes; ``sqlite_kept.py`` keeps drift alerts,
policy texts and analysis snapshots.
"""

from __future__ import annotations

import os
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from itertools import chain
from typing import Any, Literal

from modelroute.records import rollups
from modelroute.records.record import RequestRecord
from modelroute.records.rollups import Contribution, Rollup, contribution
from modelroute.records.stores.base import RecordRejected
from modelroute.records.stores.body import REQUEST_COLUMNS
from modelroute.records.stores.common import unique
from modelroute.records.stores.sqlite_base import insert_sql
from modelroute.records.stores.sqlite_kept import SqliteKept
from modelroute.records.stores.sqlite_migrate import SqliteMigrations
from modelroute.records.stores.sqlite_outcomes import SqliteOutcomes
from modelroute.records.stores.sqlite_reads import SqliteReads

# Several rows per statement: sqlite3 releases the GIL around every statement step, and under
# a busy event loop each re-acquisition can wait a whole switch interval. 50 rows per step cut
# those hand-offs fiftyfold (measured: ~1.6x records/s through RecordWriter under load). The
# rest of a batch goes in one statement of its own size too, not a row per step: the writer's
# batches are small (64) while it keeps up, so the rest is most of a batch.
_ROWS_PER_STATEMENT = 50
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


def _add_rollup(db: sqlite3.Connection, rollup: Rollup) -> None:
    """Add a batch's rollup to the stored one: one upsert per touched key."""
    if not rollup.records:
        return
    for grain, (figures, rejections) in _ROLLUP_UPSERTS.items():
        db.executemany(figures, rollup.rows(grain))
        db.executemany(rejections, rollup.rejection_rows(grain))
    db.executemany(_POLICY_UPSERT, rollup.policy_rows())


@cache
def _insert_rows(rows: int) -> str:
    """The ``requests`` insert of ``rows`` rows (1 to ``_ROWS_PER_STATEMENT``)."""
    return insert_sql("requests", REQUEST_COLUMNS, "request_id", rows)


def _insert(db: sqlite3.Connection, rows: list[tuple[Any, ...]], give_way: bool) -> None:
    for i in range(0, len(rows), _ROWS_PER_STATEMENT):
        if give_way and i:
            _yield()
        chunk = rows[i : i + _ROWS_PER_STATEMENT]
        db.execute(_insert_rows(len(chunk)), list(chain.from_iterable(chunk)))


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


class SqliteStore(SqliteMigrations, SqliteReads, SqliteOutcomes, SqliteKept):
    dialect: Literal["sqlite"] = "sqlite"
    # The most records ``RecordWriter`` hands over at once while it keeps up: a batch runs
    # on the serving core uninterrupted, and requests in flight wait it out (see writer.py).
    flush_size = 64

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
        # Room for the inserts of every size (``_insert_rows``) beside the reads' statements.
        conn = sqlite3.connect(self.path, isolation_level=None, cached_statements=256)
        conn.row_factory = sqlite3.Row
        # A generous wait while opening: another worker may be migrating the same file.
        conn.execute("PRAGMA busy_timeout = 30000")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")
        self._conn = conn
        self._migrate(None)  # foreign keys still off: a migration may swap a referenced table
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")

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
        for i, r in enumerate(unique(batch), 1):
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
        with self._immediate() as db:
            if stats:
                db.executemany(_INSERT_STATS, stats.items())
            # ON CONFLICT DO NOTHING: a request id already stored (a replayed spool) is skipped,
            # and with everything in one row there is nothing else to keep in step with it.
            before = db.total_changes
            _insert(db, rows, give_way)
            if db.total_changes - before != len(rows):
                db.execute("ROLLBACK")
                return False
            _add_rollup(db, rollup)
        return True

    def _stored_ids(self, ids: list[str]) -> set[str]:
        sql = "SELECT request_id FROM requests"
        return {row[0] for row in self._chunked_in(sql, "request_id", ids)}
