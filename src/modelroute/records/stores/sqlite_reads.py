"""Reading records from the SQLite store: one or many by id, pages of them, listings, the
per-route figures, and exports."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from modelroute.records.stores import sql
from modelroute.records.stores.base import ExportFile, ExportFormat, QualityKey, merge_stats
from modelroute.records.stores.body import listing_dict, stats_ids
from modelroute.records.stores.common import quality_from, records_from
from modelroute.records.stores.sqlite_base import SqliteBase

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
_FEEDBACK_STATS = sql.feedback_stats_sql(lambda n: "?")
_QUALITY = sql.quality_sql(lambda n: "?")
_SELECT_REQUESTS = f"SELECT {sql.REQUEST_SELECT} FROM requests"
_SELECT_STATS = "SELECT stats_id, stats FROM planner_stats"
_SELECT_FEEDBACK = f"SELECT request_id, {sql.FEEDBACK_COLUMNS} FROM feedback"


class SqliteReads(SqliteBase):
    async def get(self, request_id: str) -> dict[str, Any] | None:
        return await self._call(self._get, request_id)

    def _get(self, request_id: str) -> dict[str, Any] | None:
        row = self._db.execute(f"{_SELECT_REQUESTS} WHERE request_id = ?", (request_id,))
        found = self._records(row.fetchall())
        return found[0] if found else None

    async def get_many(self, request_ids: Sequence[str]) -> list[dict[str, Any]]:
        return await self._call(self._get_many, list(dict.fromkeys(request_ids)))

    def _get_many(self, wanted: list[str]) -> list[dict[str, Any]]:
        return self._records(self._chunked_in(_SELECT_REQUESTS, "request_id", wanted))

    def _records(self, rows: list[sqlite3.Row]) -> list[dict[str, Any]]:
        """Whole records for request rows: their planner statistics and feedback joined."""
        ids = [row["request_id"] for row in rows]
        wanted = list(stats_ids(rows))
        stats = {r[0]: r[1] for r in self._chunked_in(_SELECT_STATS, "stats_id", wanted)}
        feedback = self._chunked_in(_SELECT_FEEDBACK, "request_id", ids, "ORDER BY id")
        return records_from(rows, stats, feedback)

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
        statement, params = sql.page_sql(lambda n: "?", since, route)
        rows = self._fetch(statement, *after, *params, size)
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
        statement, params = sql.query_sql(lambda n: "?", route, model, since, failed, limit)
        rows = await self._call(self._fetch, statement, *params)
        return [listing_dict(row) for row in rows]

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
        return quality_from(await self._call(self._fetch, _QUALITY, start))

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
