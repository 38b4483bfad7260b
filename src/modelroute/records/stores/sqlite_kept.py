"""What analyses keep beside the records, in the SQLite store: the drift alerts raised, and
the dashboard's policy texts and analysis snapshots."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import Any

from modelroute.records.stores import sql
from modelroute.records.stores.sqlite_base import SqliteBase

_RAISE_ALERT = sql.raise_alert_sql(lambda n: f"?{n}")
_REMEMBER_POLICY = sql.policy_sql(lambda n: f"?{n}")
_ADD_SNAPSHOT, _PRUNE_SNAPSHOTS = sql.snapshot_sql(lambda n: f"?{n}")


class SqliteKept(SqliteBase):
    # --- drift alerts -----------------------------------------------------------------------

    async def raise_alerts(self, alerts: Mapping[str, tuple[str, str]]) -> set[str]:
        rows = [(key, kind, time.time(), evidence) for key, (kind, evidence) in alerts.items()]
        return await self._call(self._raise_alerts, rows) if rows else set()

    def _raise_alerts(self, rows: list[tuple[str, str, float, str]]) -> set[str]:
        with self._immediate() as db:
            return {found[0] for row in rows for found in db.execute(_RAISE_ALERT, row)}

    async def raised_alerts(self) -> dict[str, str]:
        rows = await self.read_sql(sql.RAISED_ALERTS)
        return {condition: kind for condition, kind in rows}

    async def clear_alerts(self, conditions: Iterable[str]) -> int:
        keys = [(key,) for key in conditions]
        return await self._call(self._clear_alerts, keys) if keys else 0

    def _clear_alerts(self, keys: list[tuple[str]]) -> int:
        before = self._db.total_changes
        self._db.executemany("DELETE FROM drift_alerts WHERE condition = ?", keys)
        return self._db.total_changes - before

    # --- the dashboard's policies and snapshots --------------------------------------------

    async def remember_policy(
        self, policy_hash: str, version: str | None, source: str, text: str
    ) -> bool:
        params = (policy_hash, version, source, text, time.time())
        return await self._call(self._remember_policy, params)

    def _remember_policy(self, params: tuple[Any, ...]) -> bool:
        return self._db.execute(_REMEMBER_POLICY, params).fetchone() is not None

    async def add_snapshot(
        self, kind: str, computed_at: float, took_s: float, headline: str, data: str, text: str
    ) -> None:
        await self._call(self._add_snapshot, (kind, computed_at, took_s, headline, data, text))

    def _add_snapshot(self, params: tuple[Any, ...]) -> None:
        with self._immediate() as db:
            db.execute(_ADD_SNAPSHOT, params)
            db.execute(_PRUNE_SNAPSHOTS, params[:1])
