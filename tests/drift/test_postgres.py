"""Drift's SQL on PostgreSQL: the same seeded traffic gives the same aggregates, samples and
findings as in SQLite, and alert conditions are kept once there too."""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest

from modelroute.analysis.drift import Windows, check, queries
from modelroute.analysis.drift.alerts import Announcer
from modelroute.records.stores.base import Store
from modelroute.records.stores.postgres import PostgresStore
from modelroute.records.stores.sqlite import SqliteStore

from .support import fill
from .traffic import DAY, Served

NOW = time.time()
WINDOWS = Windows.ending(NOW, DAY, 7 * DAY)
CHAT = Served()
TRIAGE = Served(route="triage", model="mini", reported="mini-2024-07-18", escalation_rate=0.2)
SLOW = dataclasses.replace(CHAT, latency_ms=400.0, reported="small-2024-11-20")


async def _filled(store: Store) -> Store:
    await store.open()
    await fill(
        store, np.random.default_rng(11), NOW, [(CHAT, 900), (TRIAGE, 900)],
        [(SLOW, 300), (TRIAGE, 300)], outcome_means=[(CHAT, 150, 0.9, 0.6)],
    )  # fmt: skip
    return store


def _rounded(rows: list[tuple[object, ...]]) -> list[tuple[object, ...]]:
    return sorted(
        (tuple(round(v, 9) if isinstance(v, float) else v for v in r) for r in rows),
        key=repr,
    )


async def test_postgres_aggregates_and_findings_match_sqlite(tmp_path: Path, pg_url: str) -> None:
    lite = await _filled(SqliteStore(tmp_path / "records.db"))
    pg = await _filled(PostgresStore(pg_url))
    try:
        assert _rounded(await queries.groups(pg, WINDOWS)) == _rounded(
            await queries.groups(lite, WINDOWS)
        )
        assert _rounded(await queries.outcome_groups(pg, WINDOWS)) == _rounded(
            await queries.outcome_groups(lite, WINDOWS)
        )
        # every group is below the sample size: the samples are the whole groups, alike
        rates = {"small-2024-11-20": 1.0}
        pg_sample = await queries.served_sample(pg, WINDOWS, "chat", "small", rates, 1.0)
        lite_sample = await queries.served_sample(lite, WINDOWS, "chat", "small", rates, 1.0)
        assert sorted(pg_sample.baseline[0]) == sorted(lite_sample.baseline[0])
        assert sorted(pg_sample.current["small-2024-11-20"][1]) == pytest.approx(
            sorted(lite_sample.current["small-2024-11-20"][1])
        )
        assert len(pg_sample.baseline[0]) == pytest.approx(900 * 0.98, rel=0.05)
        pg_tokens = await queries.prompt_tokens(pg, WINDOWS, 1.0, 1.0)
        assert [sorted(x) for x in pg_tokens] == [
            sorted(x) for x in await queries.prompt_tokens(lite, WINDOWS, 1.0, 1.0)
        ]
        # a sampled read keeps about the share asked for
        half = await queries.prompt_tokens(pg, WINDOWS, 0.5, 0.5)
        assert 0.4 * 600 < len(half[0]) < 0.6 * 600

        pg_report, lite_report = await check(pg, WINDOWS), await check(lite, WINDOWS)

        def summary(report: object) -> list[tuple[object, ...]]:
            return [
                (f.condition, f.status, f.n_current, f.n_baseline)
                for f in report.findings  # type: ignore[attr-defined]
            ]

        assert summary(pg_report) == summary(lite_report)
        kinds = {f.kind for f in pg_report.alerts}
        assert {"version", "latency", "quality"} <= kinds
        pg_version = next(f for f in pg_report.alerts if f.kind == "version")
        lite_version = next(f for f in lite_report.alerts if f.kind == "version")
        assert pg_version.evidence["first_request"] == lite_version.evidence["first_request"]

        announcer = Announcer()
        new = await announcer.announce(pg, pg_report)
        assert {f.condition for f in new} == {f.condition for f in pg_report.alerts}
        assert await announcer.announce(pg, await check(pg, WINDOWS)) == []
        assert set(await pg.raised_alerts()) == {f.condition for f in new}
        assert await pg.clear_alerts([new[0].condition]) == 1
        assert new[0].condition not in await pg.raised_alerts()
    finally:
        await lite.close()
        await pg.close()
