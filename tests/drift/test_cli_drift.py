"""``modelroute drift`` as a user runs it: a table or JSON, exit 1 when anything alerts, 0 when
nothing does, 2 on bad input; a --webhook announced once across runs (the store keeps the
conditions raised)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import pytest

from modelroute.records.stores.sqlite import SqliteStore

from ..conftest import run_cli
from .support import fill, webhook_receiver
from .traffic import Served

NOW = time.time()
CHAT = Served()


async def _store(path: Path, slow: bool) -> Path:
    store = SqliteStore(path)
    await store.open()
    try:
        current = dataclasses.replace(CHAT, latency_ms=500.0) if slow else CHAT
        await fill(store, np.random.default_rng(7), NOW, [(CHAT, 1400)], [(current, 300)])
    finally:
        await store.close()
    return path


async def test_no_drift_exits_0_with_the_report(tmp_path: Path) -> None:
    db = await _store(tmp_path / "calm.db", slow=False)
    done = await asyncio.to_thread(run_cli, "drift", "--store", str(db))
    assert done.returncode == 0, done.stderr
    assert "0 alert(s)" in done.stdout
    assert "ok      latency         route=chat model=small" in done.stdout
    assert "no policy given" in done.stdout


async def test_an_alert_exits_1_and_its_webhook_is_posted_once_across_runs(
    tmp_path: Path,
) -> None:
    db = await _store(tmp_path / "slow.db", slow=True)
    async with webhook_receiver() as hook:
        args = ("drift", "--store", str(db), "--webhook", hook.url)
        first = await asyncio.to_thread(run_cli, *args, "--json")
        second = await asyncio.to_thread(run_cli, *args)
    assert first.returncode == second.returncode == 1, first.stderr + second.stderr
    report = json.loads(first.stdout)
    [alert] = [f for f in report["findings"] if f["status"] == "alert"]
    assert alert["kind"] == "latency" and report["announced"] == [alert["condition"]]
    assert alert["p_adjusted"] <= report["thresholds"]["alpha"]
    assert report["windows"]["end"] - report["windows"]["current_start"] == pytest.approx(86400)
    assert "ALERT   latency         route=chat model=small version=small-2024-08-06" in (
        second.stdout
    )
    assert "announced now: 0 (log line, webhook); announced before: 1" in second.stdout
    assert "drift alert: latency" in first.stderr  # the log line, once: not in the second run
    assert "drift alert" not in second.stderr
    assert [b["alert"]["condition"] for b in hook.bodies] == [alert["condition"]]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "yesterday-ish"), "--since"),
        (("--baseline", "0d"), "--baseline"),
        (("--baseline", "7 weeks"), "--baseline"),
        (("--since", "2h", "--alpha", "2"), "alpha must be between 0 and 1"),
        (("--min-requests", "1"), "min_requests must be at least 2"),
        (("--webhook", "ftp://example.org/hook"), "--webhook"),
        (("--policy", "missing.yaml"), "missing.yaml"),
    ],
)
async def test_bad_input_exits_2_with_a_message(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    db = await _store(tmp_path / "calm.db", slow=False)
    done = await asyncio.to_thread(run_cli, "drift", "--store", str(db), *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert message in done.stderr and "Traceback" not in done.stderr


def test_a_store_that_is_not_there_exits_2(tmp_path: Path) -> None:
    done = run_cli("drift", "--store", str(tmp_path / "nothing.db"))
    assert done.returncode == 2 and "no records at" in done.stderr


def test_serve_refuses_drift_checks_without_a_store() -> None:
    from ..conftest import EXAMPLES

    done = run_cli(
        "serve", str(EXAMPLES / "quickstart.yaml"), "--store", "none", "--drift-every", "5m"
    )
    assert done.returncode == 2 and "--drift-every reads the record store" in done.stderr
    done = run_cli("serve", str(EXAMPLES / "quickstart.yaml"), "--drift-webhook", "http://x/h")
    assert done.returncode == 2 and "--drift-webhook needs --drift-every" in done.stderr
