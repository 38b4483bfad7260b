"""Drift checks inside the gateway as ``serve --drift-every`` builds it, under uvicorn, with
the simulator upstream and a SQLite store: the simulator's version switch fires exactly one
version alert (naming the first request that saw it), an injected latency fires a latency
alert, each reaches a real webhook once and shows at /metrics."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from modelroute import load_policy_text
from modelroute.analysis.drift.watch import DriftWatch
from modelroute.records.stores.sqlite import SqliteStore
from modelroute.serve import build_app
from modelroute.server.app import Gateway
from modelroute.testing import Simulator

from ..gateway.fixtures import POLICY, ask, sim_config
from ..gateway.harness import serve_app
from .support import Receiver, webhook_receiver

DAY = 86_400.0
PATIENCE_S = 30.0  # how long to wait for records that should be stored well before


@contextlib.asynccontextmanager
async def served(
    tmp_path: Path, hook: Receiver, every_s: float = 3600.0, **sim: Any
) -> AsyncIterator[tuple[str, Simulator, DriftWatch, Path]]:
    """The gateway with drift checks every ``every_s`` (the first at start-up), its records
    in SQLite."""
    db = tmp_path / "records.db"
    async with Simulator(sim_config(**sim)) as simulator:
        text = POLICY.replace("{sim}", simulator.openai_base_url)
        policy = load_policy_text(text.replace("{sim_root}", simulator.base_url), "p.yaml")
        drift = {"every_s": every_s, "current_s": DAY, "baseline_s": 7 * DAY, "webhook": hook.url}
        app: Gateway = build_app(
            policy, store_url=str(db), spool_dir=str(tmp_path / "spool"), content="truncated",
            traces="off", drift=drift,
        )  # fmt: skip
        [watch] = [s for s in app.services if isinstance(s, DriftWatch)]
        assert isinstance(watch, DriftWatch)
        async with serve_app(app) as url:
            yield url, simulator, watch, db


async def _chat(http: httpx.AsyncClient, url: str, n: int) -> list[str]:
    """``n`` requests, eight at a time; their request ids in order."""
    ids: list[str] = []
    for start in range(0, n, 8):
        replies = await asyncio.gather(
            *(
                http.post(f"{url}/v1/chat/completions", json={"model": "chat", **ask()})
                for _ in range(min(8, n - start))
            )
        )
        for reply in replies:
            assert reply.status_code == 200, reply.text
            ids.append(reply.headers["x-modelroute-request-id"])
    return ids


async def _stored(db: Path, n: int) -> None:
    store = SqliteStore(db)
    await store.open()
    try:
        deadline = time.monotonic() + PATIENCE_S
        while await store.count() < n:
            assert time.monotonic() < deadline, f"{n} records were not stored"
            await asyncio.sleep(0.05)
    finally:
        await store.close()


async def _started(watch: DriftWatch) -> None:
    deadline = time.monotonic() + PATIENCE_S
    while watch.checks < 1:  # the check at start-up, on the empty store
        assert time.monotonic() < deadline, "the first drift check did not run"
        await asyncio.sleep(0.05)


async def _checked(watch: DriftWatch, then: int) -> None:
    """Wait until ``then`` more periodic checks have completed."""
    target = watch.checks + then
    deadline = time.monotonic() + PATIENCE_S
    while watch.checks < target:
        assert time.monotonic() < deadline, "the periodic drift checks stopped"
        await asyncio.sleep(0.05)


async def test_the_simulator_version_switch_fires_exactly_one_version_alert(
    tmp_path: Path,
) -> None:
    """The gateway checks every 0.2 s while the traffic flows: the switch is announced once,
    however many checks find it."""
    async with webhook_receiver() as hook, served(tmp_path, hook, every_s=0.2) as (
        url, sim, watch, db,
    ):  # fmt: skip
        await _started(watch)
        async with httpx.AsyncClient(timeout=30) as http:
            await _chat(http, url, 30)
            switched = await http.post(
                f"{sim.base_url}/_sim/models/primary-sim",
                json={"reported_model": "primary-sim-2024-11-20", "system_fingerprint": "fp_2"},
            )
            assert switched.status_code == 200
            after = await _chat(http, url, 30)
            await _stored(db, 60)
            reports = []
            for _ in range(4):
                await _checked(watch, 1)
                assert watch.last is not None
                reports.append(watch.last)
            scrape = (await http.get(f"{url}/metrics")).text
    for report in reports[1:]:  # every check after the records were stored found it ...
        assert [(f.kind, f.subject) for f in report.alerts] == [
            (
                "version",
                {"model": "primary", "reported": "primary-sim-2024-11-20", "fingerprint": "fp_2"},
            )
        ]
    assert len(hook.bodies) == 1  # ... and is announced once
    alert = hook.bodies[0]["alert"]
    assert alert["kind"] == "version"
    assert alert["evidence"]["first_request"] in after[:8]  # the first batch after the switch
    assert alert["evidence"]["previous"]["reported"] == "primary-sim-2024-08-06"
    assert alert["evidence"]["previous"]["fingerprint"] == "fp_primary"
    assert (
        'modelroute_drift_alert{condition="version|model=primary|'
        'reported=primary-sim-2024-11-20|fingerprint=fp_2",kind="version",model="primary",'
        'route=""} 1.0'
    ) in scrape


async def test_an_injected_latency_regression_fires_a_latency_alert(tmp_path: Path) -> None:
    calm = {"latency_ms": {"p50": 20, "p95": 40}}
    async with webhook_receiver() as hook, served(tmp_path, hook, **{"primary-sim": calm}) as (
        url, sim, watch, db,
    ):  # fmt: skip
        await _started(watch)
        async with httpx.AsyncClient(timeout=30) as http:
            began = time.time()
            await _chat(http, url, 120)
            slowed = await http.post(
                f"{sim.base_url}/_sim/models/primary-sim",
                json={"latency_ms": {"p50": 90, "p95": 150}},
            )
            assert slowed.status_code == 200
            switched = time.time()
            await _chat(http, url, 120)
            await _stored(db, 240)
            # the baseline: the calm requests; the current window: the slow ones (the check's
            # clock held, so that the window starts exactly at the switch)
            now = time.time()
            watch.clock = lambda: now
            watch.current_s = now - switched
            watch.baseline_s = switched - began + 1.0
            report = await watch.run_once()
    assert [f.kind for f in report.alerts] == ["latency"], [f.summary for f in report.alerts]
    [latency] = report.alerts
    assert latency.subject == {
        "route": "chat",
        "model": "primary",
        "version": "primary-sim-2024-08-06",
    }
    assert (latency.n_current, latency.n_baseline) == (120, 120)
    assert latency.effect["median_ratio"] > 2.0
    assert [b["alert"]["kind"] for b in hook.bodies] == ["latency"]
