"""What every part of the PostgreSQL store stands on: the URL check, the connection pool,
and read transactions with their own time limit.

Writes must fail fast rather than hang (the writer then spools the batch): every pooled
connection runs with ``lock_timeout`` and ``statement_timeout`` set to ``write_timeout_s``,
so a table locked by someone else makes ``write`` raise within that time. Reads that may
legitimately take longer (stats, export) raise the limit for their own transaction only.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg

from modelroute.records.stores.body import RowEncoder
from modelroute.records.stores.sql import SCHEMA_VERSION

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


class PostgresBase:
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
            value = await conn.fetchval(SCHEMA_VERSION)
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
