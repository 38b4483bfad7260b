"""Reading records from the PostgreSQL store: one or many by id, pages of them, listings, the
per-route figures, and exports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from modelroute.records.stores import sql
from modelroute.records.stores.base import ExportFile, ExportFormat, QualityKey, merge_stats
from modelroute.records.stores.body import listing_dict, stats_ids
from modelroute.records.stores.common import quality_from, records_from
from modelroute.records.stores.postgres_base import PostgresBase

# percentile_disc is nearest-rank, the same definition the SQLite store computes by hand.
_STATS = """
SELECT route, final_model AS model, COUNT(*) AS requests,
       COUNT(*) FILTER (WHERE status <> 'ok') AS errors, SUM(cost_usd) AS spend_usd,
       percentile_disc(0.5) WITHIN GROUP (ORDER BY latency_ms) AS p50_latency_ms,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) AS p95_latency_ms
FROM requests WHERE started_at >= $1 GROUP BY route, final_model
"""
_FEEDBACK_STATS = sql.feedback_stats_sql(lambda n: f"${n}")
_QUALITY = sql.quality_sql(lambda n: f"${n}")
_SELECT_REQUESTS = f"SELECT {sql.REQUEST_SELECT} FROM requests"


class PostgresReads(PostgresBase):
    async def get(self, request_id: str) -> dict[str, Any] | None:
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(f"{_SELECT_REQUESTS} WHERE request_id = $1", request_id)
            found = await _records(conn, rows)
        return found[0] if found else None

    async def get_many(self, request_ids: Sequence[str]) -> list[dict[str, Any]]:
        async with self._reading() as conn:
            rows = await conn.fetch(
                f"{_SELECT_REQUESTS} WHERE request_id = ANY($1::text[])",
                list(dict.fromkeys(request_ids)),
            )
            return await _records(conn, rows)

    async def scan(
        self, *, since: float | None = None, route: str | None = None, page_size: int = 1000
    ) -> AsyncIterator[list[dict[str, Any]]]:
        statement, params = sql.page_sql(lambda n: f"${n}", since, route)
        after: tuple[float, str] = (float("-inf"), "")
        while True:
            async with self._reading() as conn:
                rows = await conn.fetch(statement, *after, *params, page_size)
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
        statement, params = sql.query_sql(lambda n: f"${n}", route, model, since, failed, limit)
        async with self._reading() as conn:
            rows = await conn.fetch(statement, *params)
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
        return quality_from(rows)

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
    stats = {
        r[0]: r[1]
        for r in await conn.fetch(
            "SELECT stats_id, stats FROM planner_stats WHERE stats_id = ANY($1::text[])",
            list(stats_ids(rows)),
        )
    }
    feedback = await conn.fetch(
        f"SELECT request_id, {sql.FEEDBACK_COLUMNS} FROM feedback "
        "WHERE request_id = ANY($1::text[]) ORDER BY id",
        [row["request_id"] for row in rows],
    )
    return records_from(rows, stats, feedback)
