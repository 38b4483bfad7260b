"""What analyses keep beside the records, in the PostgreSQL store: the drift alerts raised,
and the dashboard's policy texts and analysis snapshots."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping

from modelroute.records.stores import sql
from modelroute.records.stores.postgres_base import PostgresBase

_RAISE_ALERT = sql.raise_alert_sql(lambda n: f"${n}")
_REMEMBER_POLICY = sql.policy_sql(lambda n: f"${n}")
_ADD_SNAPSHOT, _PRUNE_SNAPSHOTS = sql.snapshot_sql(lambda n: f"${n}")


class PostgresKept(PostgresBase):
    # --- drift alerts -----------------------------------------------------------------------

    async def raise_alerts(self, alerts: Mapping[str, tuple[str, str]]) -> set[str]:
        now = time.time()
        new: set[str] = set()
        async with self.pool.acquire() as conn, conn.transaction():
            for key, (kind, evidence) in alerts.items():
                found = await conn.fetchval(_RAISE_ALERT, key, kind, now, evidence)
                if found is not None:
                    new.add(found)
        return new

    async def raised_alerts(self) -> dict[str, str]:
        rows = await self.read_sql(sql.RAISED_ALERTS)
        return {condition: kind for condition, kind in rows}

    async def clear_alerts(self, conditions: Iterable[str]) -> int:
        keys = list(conditions)
        if not keys:
            return 0
        async with self.pool.acquire() as conn:
            status = await conn.execute(
                "DELETE FROM drift_alerts WHERE condition = ANY($1::text[])", keys
            )
        return int(status.rpartition(" ")[2])  # "DELETE <rows>"

    # --- the dashboard's policies and snapshots --------------------------------------------

    async def remember_policy(
        self, policy_hash: str, version: str | None, source: str, text: str
    ) -> bool:
        async with self.pool.acquire() as conn:
            found = await conn.fetchval(
                _REMEMBER_POLICY, policy_hash, version, source, text, time.time()
            )
        return found is not None

    async def add_snapshot(
        self, kind: str, computed_at: float, took_s: float, headline: str, data: str, text: str
    ) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(_ADD_SNAPSHOT, kind, computed_at, took_s, headline, data, text)
            await conn.execute(_PRUNE_SNAPSHOTS, kind)
