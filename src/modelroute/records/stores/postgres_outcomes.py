"""What is measured of requests after the fact, in the PostgreSQL store: feedback and
outcomes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from functools import partial

from modelroute.outcomes.outcome import Outcome, OutcomeSource
from modelroute.records.stores import outcome_sql
from modelroute.records.stores.base import OutcomeScope, ScoreRow
from modelroute.records.stores.postgres_base import PostgresBase
from modelroute.records.stores.sql import feedback_sql

_OUTCOME_COLS = ", ".join(outcome_sql.OUTCOME_COLUMNS)
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
    f"{_INSERT_OUTCOMES}{outcome_sql.outcome_conflict(True)} RETURNING (xmax = 0) AS inserted"
)
_INSERT_OUTCOMES += outcome_sql.outcome_conflict(False)
_ADD_FEEDBACK = feedback_sql(lambda n: f"${n}")


class PostgresOutcomes(PostgresBase):
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
        rows = await asyncio.to_thread(partial(outcome_sql.outcome_rows, outcomes, last=replace))
        async with self.pool.acquire() as conn, conn.transaction():
            # a bulk import may take longer than a record batch is allowed to
            await conn.execute(f"SET LOCAL statement_timeout = {int(self.read_timeout_s * 1000)}")
            await conn.execute(_OUTCOMES_INCOMING)
            await conn.copy_records_to_table(
                "outcomes_incoming", records=rows, columns=outcome_sql.OUTCOME_COLUMNS
            )
            if replace:
                return sum(bool(r[0]) for r in await conn.fetch(_REPLACE_OUTCOMES))
            status = await conn.execute(_INSERT_OUTCOMES)
        return int(status.rpartition(" ")[2])  # "INSERT 0 <rows>"

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
        sql, params = outcome_sql.outcomes_sql(
            lambda n: f"${n}", source=source, route=route, task=task, model=model, run=run,
            since=since, limit=limit,
        )  # fmt: skip
        async with self._reading() as conn:
            rows = await conn.fetch(sql, *params)
        return [outcome_sql.outcome_from(row) for row in rows]

    async def outcome_scores(
        self,
        by: OutcomeScope = "route",
        *,
        source: OutcomeSource | None = None,
        since: float | None = None,
    ) -> list[ScoreRow]:
        sql, params = outcome_sql.outcome_scores_sql(lambda n: f"${n}", by, source, since)
        async with self._reading() as conn:
            rows = await conn.fetch(sql, *params)
        return [tuple(row) for row in rows]
