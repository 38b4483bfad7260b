"""`modelroute serve --store ... --quality-refresh ...` as a real process: outcomes already in
the store when it starts steer the quickstart's chat route, and a refresh interval that is not
a duration is a one-line error with exit code 2."""

from __future__ import annotations

import asyncio
import urllib.request
from pathlib import Path

from modelroute.outcomes import Outcome, OutcomeSource
from modelroute.records.stores.sqlite import SqliteStore

from .conftest import run_cli
from .gateway.harness import free_port
from .serve_process import quickstart_policy, start_serve, stop, wait_ready

SMALL_VERSION = "small-v1-2024-08-06"  # what the quickstart's simulator reports


async def _seed(path: Path) -> None:
    store = SqliteStore(path)
    await store.open()
    try:
        await store.add_outcomes(
            [
                Outcome(
                    OutcomeSource.EVAL,
                    "exact",
                    float(i % 2),
                    "small",
                    1e9 + i,
                    prompt_id=f"q{i}",
                    route="chat",
                    reported_model=SMALL_VERSION,
                    run="r",
                )
                for i in range(60)
            ]
        )
    finally:
        await store.close()


def _model(base: str) -> str:
    body = b'{"model": "chat", "messages": [{"role": "user", "content": "capital of France?"}]}'
    request = urllib.request.Request(
        f"{base}/v1/chat/completions", body, {"content-type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(response.headers["x-modelroute-model"])


def test_serve_reads_measured_quality_from_its_store(tmp_path: Path) -> None:
    policy, _ = quickstart_policy(tmp_path)
    db = tmp_path / "records.db"
    asyncio.run(_seed(db))  # the small model is right half the time: below min_quality 0.8
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    args = ("--store", str(db), "--spool-dir", str(tmp_path / "spool"), "--quality-refresh", "5m")
    proc = start_serve(policy, port, *args, stderr=tmp_path / "stderr")
    try:
        wait_ready(base, proc)
        assert _model(base) == "large"
    finally:
        stop(proc)


def test_a_bad_refresh_interval_is_refused(tmp_path: Path) -> None:
    policy, _ = quickstart_policy(tmp_path)
    for bad in ("0s", "soon", "-5s"):
        result = run_cli("serve", str(policy), "--store", "none", "--quality-refresh", bad)
        assert result.returncode == 2, result.stderr
        assert result.stderr.strip().splitlines() == [
            f"error: --quality-refresh: {bad!r} is not a duration above zero (30s, 5m, 1h)"
        ]
