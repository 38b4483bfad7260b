"""What every part of the SQLite store stands on: its connection, the thread that owns it,
write transactions, and the small reads the others build on.

Every call runs on one dedicated thread that owns the connection (sqlite3 connections are
bound to the thread that made them, and a single thread serialises this process's use of the
file), so the event loop never waits on disk or on a lock held by another process. Methods
with a leading underscore run on that thread; the public ones hand them to it with ``_call``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from modelroute.records.stores.body import RowEncoder
from modelroute.records.stores.sql import SCHEMA_VERSION

T = TypeVar("T")

_ID_CHUNK = 500  # well under SQLite's bound-parameter limit


def insert_sql(table: str, columns: tuple[str, ...], key: str, rows: int) -> str:
    one = f"({', '.join('?' * len(columns))})"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES {', '.join([one] * rows)} "
        # Not INSERT OR IGNORE: that would also swallow NOT NULL violations, silently losing rows.
        f"ON CONFLICT ({key}) DO NOTHING"
    )


class SqliteBase:
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

    @contextmanager
    def _immediate(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, the write lock taken up front (``BEGIN IMMEDIATE``, so two
        writers never deadlock upgrading a read lock): committed when the body ends (unless it
        rolled back itself), rolled back when it raises."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
            if db.in_transaction:
                db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise

    async def schema_version(self) -> int:
        return await self._call(self._scalar, SCHEMA_VERSION)

    async def read_sql(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return await self._call(self._tuples, sql, list(params))

    def _scalar(self, sql: str, *params: Any) -> Any:
        return self._db.execute(sql, params).fetchone()[0]

    def _fetch(self, sql: str, *params: Any) -> list[sqlite3.Row]:
        return self._db.execute(sql, params).fetchall()

    def _tuples(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        cursor = self._db.cursor()
        cursor.row_factory = None  # plain tuples: no sqlite3.Row per row
        return cursor.execute(sql, params).fetchall()

    def _in(self, sql: str, column: str, values: list[str], tail: str = "") -> list[sqlite3.Row]:
        marks = ", ".join("?" * len(values))
        return self._db.execute(f"{sql} WHERE {column} IN ({marks}) {tail}", values).fetchall()

    def _chunked_in(
        self, sql: str, column: str, values: list[str], tail: str = ""
    ) -> list[sqlite3.Row]:
        """``_in`` over any number of values, a chunk of them per statement."""
        return [
            row
            for i in range(0, len(values), _ID_CHUNK)
            for row in self._in(sql, column, values[i : i + _ID_CHUNK], tail)
        ]
