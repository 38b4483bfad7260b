"""What is measured of requests after the fact, in the SQLite store: feedback and outcomes."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

from modelroute.outcomes.outcome import Outcome, OutcomeSource
from modelroute.records.stores import outcome_sql
from modelroute.records.stores.base import OutcomeScope, ScoreRow
from modelroute.records.stores.sql import feedback_sql
from modelroute.records.stores.sqlite_base import SqliteBase, insert_sql

_BULK_OUTCOMES = 10_000  # outcomes in one call above which the import gets a larger page cache
_BULK_CACHE_KB = 65_536
_INSERT_OUTCOME = insert_sql("outcomes", outcome_sql.OUTCOME_COLUMNS, "outcome_id", 1)
_REPLACE_OUTCOME = _INSERT_OUTCOME.replace(
    "ON CONFLICT (outcome_id) DO NOTHING", outcome_sql.outcome_conflict(True)
)
_ADD_FEEDBACK = feedback_sql(lambda n: f"?{n}")


class SqliteOutcomes(SqliteBase):
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
        rows = outcome_sql.outcome_rows(outcomes, last=replace)
        db = self._db
        before = db.total_changes
        cache = self._scalar("PRAGMA cache_size")
        if len(rows) > _BULK_OUTCOMES:
            # five B-trees take random inserts (ids are hashes): with the default 2 MB page
            # cache a large import spends a third of its time re-reading evicted pages
            db.execute(f"PRAGMA cache_size = -{_BULK_CACHE_KB}")
        try:
            with self._immediate():
                if replace:  # an overwrite changes a row too: count the new ones beforehand
                    before += len(self._outcome_ids([r[0] for r in rows]))
                # one statement prepared once, stepped per row, all in one transaction: an
                # import of hundreds of thousands of outcomes is one commit
                db.executemany(_REPLACE_OUTCOME if replace else _INSERT_OUTCOME, rows)
        finally:
            db.execute(f"PRAGMA cache_size = {int(cache)}")
        return db.total_changes - before

    async def outcome_ids(self, ids: Iterable[str]) -> set[str]:
        wanted = list(dict.fromkeys(ids))
        return await self._call(self._outcome_ids, wanted)

    def _outcome_ids(self, wanted: list[str]) -> set[str]:
        sql = "SELECT outcome_id FROM outcomes"
        return {row[0] for row in self._chunked_in(sql, "outcome_id", wanted)}

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
        sql, params = outcome_sql.outcomes_sql(
            lambda n: "?", source=source, route=route, task=task, model=model, run=run,
            since=since, limit=limit,
        )  # fmt: skip
        return await self._call(self._outcomes, sql, params)

    def _outcomes(self, sql: str, params: list[Any]) -> list[Outcome]:
        return [outcome_sql.outcome_from(row) for row in self._db.execute(sql, params)]

    async def outcome_scores(
        self,
        by: OutcomeScope = "route",
        *,
        source: OutcomeSource | None = None,
        since: float | None = None,
    ) -> list[ScoreRow]:
        sql, params = outcome_sql.outcome_scores_sql(lambda n: "?", by, source, since)
        rows = await self._call(self._tuples, sql, params)  # no sqlite3.Row per outcome
        return cast(list[ScoreRow], rows)
