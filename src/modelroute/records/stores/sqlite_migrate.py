"""The SQLite store's migrations (``schema.py``'s steps, and the ones it runs in Python), and
the rebuild of the dashboard's rollups."""

from __future__ import annotations

import sqlite3
import time

from modelroute.records import rollups
from modelroute.records.derived import DERIVED_COLUMNS
from modelroute.records.stores import legacy, schema
from modelroute.records.stores.body import REQUEST_COLUMNS, V5_COLUMNS, derived_from_row
from modelroute.records.stores.sql import ROLLED_UP, SCHEMA_VERSION
from modelroute.records.stores.sqlite_base import SqliteBase

_FOLD_PAGE = 1000
_BACKFILL = rollups.backfill_sql("sqlite")


class SqliteMigrations(SqliteBase):
    def _migrate(self, target: int | None) -> None:
        with self._immediate() as db:  # one migrator at a time across processes
            db.execute(schema.render(schema.BOOTSTRAP, "sqlite"))
            current = db.execute(SCHEMA_VERSION)
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
        return int(db.execute(ROLLED_UP).fetchone()[0])

    async def rebuild_rollups(self) -> int:
        """Forget the rollups and add them up again from every stored row (rows loaded
        around the writer, a repair); returns how many rows were added up."""
        return await self._call(self._rebuild_rollups)

    def _rebuild_rollups(self) -> int:
        with self._immediate() as db:
            for name in rollups.TABLES:
                db.execute(f"DELETE FROM {name}")
            return self._backfill()
