"""Each alert is announced once per condition, however often it is checked: a real webhook
on 127.0.0.1 receives it once, the log has one line for it, the gauge shows it while it
holds; a condition that clears is announced again if it comes back."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from modelroute.analysis.drift import Windows, check
from modelroute.analysis.drift.alerts import Announcer
from modelroute.analysis.drift.gauge import DriftGauge
from modelroute.records.stores.sqlite import SqliteStore

from .support import fill, webhook_receiver
from .traffic import DAY, Served

NOW = time.time()
CHAT = Served()
SLOW = dataclasses.replace(CHAT, latency_ms=400.0)
NEW = dataclasses.replace(CHAT, reported="small-2024-11-20", fingerprint="fp_small_2")


async def test_a_webhook_receives_each_alert_once_across_repeated_checks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = SqliteStore(tmp_path / "records.db")
    await store.open()
    registry = CollectorRegistry()
    caplog.set_level(logging.WARNING, logger="modelroute.drift")
    try:
        await fill(store, np.random.default_rng(1), NOW, [(CHAT, 1400)], [(SLOW, 300)])
        async with webhook_receiver() as hook:
            announcer = Announcer(webhook=hook.url, gauge=DriftGauge(registry), retry_s=0.01)
            windows = Windows.ending(NOW, DAY, 7 * DAY)
            first = await check(store, windows)
            announced = await announcer.announce(store, first)
            for _ in range(3):  # the same condition, found again and again
                again = await check(store, windows)
                assert [f.condition for f in again.alerts] == [f.condition for f in first.alerts]
                assert await announcer.announce(store, again) == []
            # a second condition appears (a new version): announced once, alone
            await fill(store, np.random.default_rng(2), NOW, [], [(NEW, 200)], tag="v2")
            hook.fail_next = 1  # the webhook fails once: retried, delivered once
            for _ in range(2):
                await announcer.announce(store, await check(store, windows))
            bodies = list(hook.bodies)
    finally:
        await store.close()
    assert [f.kind for f in announced] == ["latency"]
    assert [b["alert"]["kind"] for b in bodies] == ["latency", "version"]
    latency = bodies[0]
    assert latency["alert"]["condition"] == announced[0].condition
    assert latency["alert"]["test"] == "Mann-Whitney U"
    assert latency["alert"]["n_current"] > 100 and latency["alert"]["n_baseline"] > 1000
    assert latency["alert"]["effect"]["median_ratio"] > 1.25
    assert latency["text"].startswith("modelroute drift alert: latency route=chat model=small")
    assert latency["windows"]["current_start"] == pytest.approx(NOW - DAY)
    assert bodies[1]["alert"]["evidence"]["first_request"].startswith("v2cchat-small-")
    lines = [r for r in caplog.records if r.name == "modelroute.drift"]
    assert [r.getMessage().split(":")[0] for r in lines] == ["drift alert"] * 2
    assert "latency route=chat model=small" in lines[0].getMessage()
    scrape = generate_latest(registry).decode()
    assert 'modelroute_drift_alert{condition="latency|route=chat|model=small|' in scrape
    assert 'kind="version"' in scrape and "modelroute_drift_last_check_timestamp_seconds" in scrape


async def test_a_condition_that_clears_is_announced_again_when_it_recurs(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "records.db")
    await store.open()
    registry = CollectorRegistry()
    announcer = Announcer(gauge=DriftGauge(registry))
    try:
        await fill(store, np.random.default_rng(3), NOW, [(CHAT, 1400)], [(SLOW, 300)])
        slow = Windows.ending(NOW, DAY, 7 * DAY)
        calm = Windows.ending(NOW - DAY, DAY, 6 * DAY)  # both windows before the slowdown
        [raised] = await announcer.announce(store, await check(store, slow))
        assert raised.kind == "latency" and raised.condition in await store.raised_alerts()
        cleared = await check(store, calm)
        assert not cleared.alerts
        assert await announcer.announce(store, cleared) == []
        assert raised.condition not in await store.raised_alerts()
        shown = (
            f'modelroute_drift_alert{{condition="{raised.condition}",kind="latency",'
            'model="small",route="chat"} 0.0'
        )
        assert shown in generate_latest(registry).decode()
        [again] = await announcer.announce(store, await check(store, slow))
        assert again.condition == raised.condition
    finally:
        await store.close()


async def test_too_little_data_keeps_a_raised_condition(tmp_path: Path) -> None:
    """A condition the check cannot decide (too little data now) is neither cleared nor
    announced again."""
    store = SqliteStore(tmp_path / "records.db")
    await store.open()
    announcer = Announcer()
    try:
        await fill(store, np.random.default_rng(4), NOW, [(CHAT, 1400)], [(SLOW, 300)])
        [raised] = await announcer.announce(
            store, await check(store, Windows.ending(NOW, DAY, 7 * DAY))
        )
        thin = Windows.ending(NOW, 600.0, 7 * DAY)  # ten minutes: a handful of requests
        report = await check(store, thin)
        [undecided] = [f for f in report.findings if f.condition == raised.condition]
        assert undecided.status == "not_enough_data"
        assert await announcer.announce(store, report) == []
        assert raised.condition in await store.raised_alerts()
    finally:
        await store.close()
