"""The records of a real gateway process (`modelroute serve`), on SQLite and PostgreSQL.

A mixed run (successes, fallbacks, failures, streams, refused requests) leaves exactly one
record per client request in the store, readable with `modelroute logs` and `modelroute show`;
a SIGTERM in the middle of a load, and a PostgreSQL outage in the middle of a load, lose none.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from modelroute.testing import Simulator

from ..gateway.fixtures import POLICY, ask, sim_config
from ..gateway.harness import free_port
from .conftest import ensure_pg_started, make_store, pg_ctl

MODELROUTE = Path(sys.executable).parent / "modelroute"


@asynccontextmanager
async def gateway_process(
    target: Path | str, tmp: Path, workers: int = 1
) -> AsyncIterator[tuple[str, Simulator, subprocess.Popen[bytes]]]:
    async with Simulator(sim_config()) as sim:
        policy = tmp / "policy.yaml"
        policy.write_text(
            POLICY.replace("{sim}", sim.openai_base_url).replace("{sim_root}", sim.base_url)
        )
        port = free_port()
        proc = subprocess.Popen(
            [
                str(MODELROUTE),
                "serve",
                str(policy),
                "--port",
                str(port),
                "--store",
                str(target),
                "--spool-dir",
                str(tmp / "spool"),
                "--workers",
                str(workers),
            ],
            env={**os.environ, "SIM_KEY": "k"},
            start_new_session=True,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(timeout=5) as http:
                for _ in range(300):
                    try:
                        if (await http.get(f"{url}/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
            yield url, sim, proc
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
            await asyncio.to_thread(proc.wait, 30)


async def _request(http: httpx.AsyncClient, url: str, body: dict[str, Any]) -> str | None:
    """The request id the client received, or None when no response came back."""
    try:
        if body.get("stream"):
            async with http.stream("POST", f"{url}/v1/chat/completions", json=body) as r:
                await r.aread()
                return r.headers.get("x-modelroute-request-id")
        r = await http.post(f"{url}/v1/chat/completions", json=body)
        return r.headers.get("x-modelroute-request-id")
    except httpx.TransportError:
        return None


async def _stored(target: Path | str) -> tuple[int, set[str], Any]:
    store = make_store(target)
    await store.open()
    try:
        return await store.count(), await store.ids(), store
    finally:
        await store.close()


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(MODELROUTE), *args], capture_output=True, text=True, timeout=60)


async def test_mixed_run_one_record_per_request(store_target: Path | str, tmp_path: Path) -> None:
    received: list[str | None] = []
    async with (
        gateway_process(store_target, tmp_path) as (url, sim, _proc),
        httpx.AsyncClient(timeout=20) as http,
    ):
        for _ in range(3):
            received.append(await _request(http, url, {"model": "chat", **ask()}))
        sim.update_model("primary-sim", script=["server_error", "server_error"])
        received.append(await _request(http, url, {"model": "chat", **ask()}))  # fallback
        received.append(await _request(http, url, {"model": "chat", "stream": True, **ask()}))
        for name in ("primary-sim", "secondary-sim", "claude-sim"):
            sim.update_model(name, script=["server_error"] * 2)
        received.append(await _request(http, url, {"model": "chat", **ask()}))  # 502
        received.append(await _request(http, url, {"model": "cheap-only", **ask()}))  # 422
        received.append(await _request(http, url, {"model": "nope", **ask()}))  # 404
    assert all(received) and len(set(received)) == 8
    count, ids, _ = await _stored(store_target)
    assert count == 8 and ids == set(received)

    logs = _cli("logs", "--store", str(store_target), "--json", "--limit", "100")
    assert logs.returncode == 0, logs.stderr
    rows = [json.loads(line) for line in logs.stdout.splitlines()]
    assert {r["request_id"] for r in rows} == ids
    statuses = sorted(r["status"] for r in rows)
    assert statuses == ["failed", "infeasible", "ok", "ok", "ok", "ok", "ok", "rejected"]
    fallback_id = received[3]
    assert fallback_id is not None
    shown = _cli("show", fallback_id, "--store", str(store_target))
    assert shown.returncode == 0, shown.stderr
    text = shown.stdout
    assert "answered by: secondary" in text
    assert "primary tier 0" in text and "failed (server_error" in text
    assert "decision: fixed/declared_order, order primary -> secondary -> claude" in text
    full = json.loads(_cli("show", fallback_id, "--store", str(store_target), "--json").stdout)
    assert [a["outcome"] for a in full["attempts"]] == ["failed", "failed", "ok"]
    assert full["usage"]["output_tokens"] > 0 and full["cost_usd"] > 0
    assert full["latency_ms"] > 0 and full["decision"]["chosen"] == "primary"
    stats = _cli("stats", "--store", str(store_target), "--json")
    per = {(r["route"], r["model"]): r for r in json.loads(stats.stdout)}
    assert per[("chat", "primary")]["requests"] == 4  # three plain, one streamed


async def _load(url: str, seconds: float, rate: float) -> list[str | None]:
    async with httpx.AsyncClient(timeout=30) as http:
        tasks = []
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < seconds:
            body = {"model": "chat", "stream": i % 2 == 1, **ask()}
            tasks.append(asyncio.ensure_future(_request(http, url, body)))
            i += 1
            await asyncio.sleep(1 / rate)
        return list(await asyncio.gather(*tasks))


async def test_sigterm_during_load_loses_no_record(
    store_target: Path | str, tmp_path: Path
) -> None:
    async with gateway_process(store_target, tmp_path, workers=2) as (url, sim, proc):
        sim.update_model("primary-sim", latency_ms={"p50": 30, "p95": 60})
        load = asyncio.ensure_future(_load(url, 3.0, 100))
        await asyncio.sleep(1.5)
        os.killpg(proc.pid, signal.SIGTERM)
        received = [r for r in await load if r]
        await asyncio.to_thread(proc.wait, 30)
    assert len(received) > 50
    count, ids, _ = await _stored(store_target)
    assert ids >= set(received)  # every answered request is stored...
    assert count == len(ids)  # ...once


async def test_postgres_outage_mid_load_loses_no_record(pg_url: str, tmp_path: Path) -> None:
    async with gateway_process(pg_url, tmp_path) as (url, _sim, _proc):
        load = asyncio.ensure_future(_load(url, 4.0, 60))
        await asyncio.sleep(1.0)
        try:
            await asyncio.to_thread(pg_ctl, "stop")
            await asyncio.sleep(1.5)
        finally:
            await asyncio.to_thread(ensure_pg_started)
        received = [r for r in await load if r]
        spool = tmp_path / "spool"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:  # the writer replays its spool when the store is back
            count, ids, _ = await _stored(pg_url)
            if ids >= set(received):
                break
            await asyncio.sleep(0.5)
    count, ids, _ = await _stored(pg_url)
    assert len(received) > 100
    assert set(received) <= ids and count == len(ids)
    assert spool.exists()
