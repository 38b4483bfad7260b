"""Records in PostgreSQL through asyncpg: the store for several gateway replicas.

The store is put together from parts, one responsibility each, on one connection pool
(``postgres_base.py``, with the time limits of writes and reads): this module opens, closes
and writes records, a batch in one statement (``postgres_write.py``: how, and why as JSON);
``postgres_migrate.py`` brings the database's tables up to date; ``postgres_reads.py`` reads
records; ``postgres_outcomes.py`` keeps feedback and outcomes; ``postgres_kept.py`` keeps
drift alerts, policy texts and analysis snapshots.
"""

from __future__ import annotations

import asyncio
from typing import Literal

import asyncpg

from modelroute.records import rollups
from modelroute.records.record import RequestRecord
from modelroute.records.stores.base import RecordRejected
from modelroute.records.stores.postgres_base import check_url
from modelroute.records.stores.postgres_kept import PostgresKept
from modelroute.records.stores.postgres_migrate import backfill, migrate
from modelroute.records.stores.postgres_outcomes import PostgresOutcomes
from modelroute.records.stores.postgres_reads import PostgresReads
from modelroute.records.stores.postgres_write import batch_payload, store_batch

__all__ = ["PostgresStore", "check_url", "migrate"]


class PostgresStore(PostgresReads, PostgresOutcomes, PostgresKept):
    dialect: Literal["postgres"] = "postgres"

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

    # --- writing ----------------------------------------------------------------------------

    async def write(self, batch: list[RequestRecord], *, backlog: int = 0) -> None:
        if not batch:
            return
        # Serialising the batch is CPU work: a worker thread does it, so the event loop keeps
        # the GIL every switch interval instead of waiting for the whole batch.
        try:
            payload = await asyncio.to_thread(batch_payload, self._encoder, batch)
        except TypeError as exc:  # orjson: a value JSON cannot carry
            raise RecordRejected(str(exc)) from exc
        async with self.pool.acquire() as conn:
            try:
                await store_batch(conn, payload)
            except (asyncpg.DataError, asyncpg.IntegrityConstraintViolationError) as exc:
                raise RecordRejected(str(exc)) from exc

    async def rebuild_rollups(self) -> int:
        """Forget the rollups and add them up again from every stored row (rows loaded
        around the writer, a repair); returns how many rows were added up."""
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL statement_timeout = 0")
            await conn.execute(f"TRUNCATE {', '.join(rollups.TABLES)}")
            return await backfill(conn)
