"""Three ``modelroute serve`` processes sharing Redis (``--state``) and one PostgreSQL
database (``--store``), in front of one simulator process; load comes from another process
(``load.py``). Each module gets its own Redis key prefix and database, removed afterwards."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from ..gateway.harness import free_port
from ..records.conftest import IN_CI, PG_ADMIN, _admin, database_url
from ..serve_process import PATIENCE_S, get_json, start_serve, stop, wait_ready
from ..state.conftest import REDIS_URL, delete_prefix, require_redis, unique_prefix

HERE = Path(__file__).parent

SIMULATOR = """
seed: 3
models:
  sim-v1:
    latency_ms: {p50: 15, p95: 40}
    ttft_ms: {p50: 5, p95: 15}
    tokens_per_second: 2000
    context_window: 32000
    default_answer: "Here is a careful, complete answer."
"""

POLICY = """
version: replicas
defaults:
  timeouts: {{attempt_ms: 5000, total_ms: 15000}}
  retries: {{max_attempts: 1}}
  circuit_breaker: {{consecutive_failures: 3, min_calls: 1000, cooldown_s: 600}}
models:
  sim:
    provider: simulator
    base_url: http://127.0.0.1:{sim}/v1
    model_id: sim-v1
    allow_floating: true
    prices: {{input: 1000, output: 2000}}
    context_window: 32000
    latency: {{p50_ms: 20, p95_ms: 50}}
  broken:
    provider: simulator
    base_url: http://127.0.0.1:{dead}/v1
    model_id: sim-v1
    allow_floating: true
    prices: {{input: 1, output: 2}}
    context_window: 32000
    latency: {{p50_ms: 20, p95_ms: 50}}
  quota:
    provider: simulator
    base_url: http://127.0.0.1:{sim}/v1
    model_id: sim-v1
    allow_floating: true
    prices: {{input: 1000, output: 2000}}
    context_window: 32000
    latency: {{p50_ms: 20, p95_ms: 50}}
    rate_limit: {{requests_per_minute: 60}}
routes:
  limited:
    rate_limit: {{requests_per_minute: 100, per: route}}
    strategy: {{kind: fixed, models: [sim]}}
  paid:
    budget: {{usd: 1.00}}
    strategy: {{kind: fixed, models: [sim]}}
  flaky:
    strategy: {{kind: fixed, models: [broken, sim]}}
  plain:
    strategy: {{kind: fixed, models: [sim]}}
  measured:
    strategy: {{kind: fixed, models: [sim]}}
  quota-a:
    strategy: {{kind: fixed, models: [quota]}}
  quota-b:
    strategy: {{kind: fixed, models: [quota]}}
"""


@dataclass
class Cluster:
    bases: list[str]
    procs: list[subprocess.Popen[bytes]]
    pg_url: str
    tmp: Path
    logs: list[Path] = field(default_factory=list)
    prefix: str = ""  # the Redis key prefix they share

    def load(self, **cfg: Any) -> list[dict[str, Any]]:
        """Run the load process to its end; every request's result."""
        path = self.tmp / f"load-{secrets.token_hex(3)}.json"
        path.write_text(json.dumps({"bases": self.bases, "concurrency": 12, **cfg}))
        done = subprocess.run(
            [sys.executable, str(HERE / "load.py"), str(path)],
            capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]

    def start_load(self, **cfg: Any) -> subprocess.Popen[str]:
        path = self.tmp / f"load-{secrets.token_hex(3)}.json"
        path.write_text(json.dumps({"bases": self.bases, "concurrency": 12, **cfg}))
        return subprocess.Popen(
            [sys.executable, str(HERE / "load.py"), str(path)],
            stdout=subprocess.PIPE, text=True,
        )  # fmt: skip

    def only(self, *indices: int) -> Cluster:
        """The same cluster, its load sent to these replicas only."""
        bases = [self.bases[i] for i in indices]
        return Cluster(bases, self.procs, self.pg_url, self.tmp, self.logs, self.prefix)

    def circuits(self, i: int) -> dict[str, str]:
        return dict(get_json(f"{self.bases[i]}/readyz")[1]["circuits"])

    def query(self, sql: str, *args: Any) -> list[Any]:
        async def run() -> list[Any]:
            conn = await asyncpg.connect(self.pg_url)
            try:
                return list(await conn.fetch(sql, *args))
            finally:
                await conn.close()

        return asyncio.run(run())

    def records(self, request_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The stored records of these requests (those written so far), read back through the
        store, as ``modelroute records`` would."""
        from modelroute.records.stores import open_store

        async def run() -> dict[str, dict[str, Any]]:
            store = open_store(self.pg_url)
            await store.open()
            try:
                found = {}
                for rid in request_ids:
                    record = await store.get(rid)
                    if record is not None:
                        found[rid] = record
                return found
            finally:
                await store.close()

        return asyncio.run(run())

    def wait_for_records(self, request_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The writers flush in batches: wait (boundedly) until every record is stored."""
        deadline = time.monotonic() + PATIENCE_S
        while True:
            found = self.records(request_ids)
            if len(found) == len(request_ids) or time.monotonic() > deadline:
                return found
            time.sleep(0.3)


def _pg_database() -> str:
    name = f"mr_state_{secrets.token_hex(4)}"
    try:
        asyncio.run(_admin(f"CREATE DATABASE {name}"))
    except OSError as exc:
        if IN_CI:
            pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
        pytest.skip(f"PostgreSQL is not reachable at {PG_ADMIN}: {exc}")
    return name


@contextlib.contextmanager
def simulator(tmp: Path, port: int) -> Iterator[None]:
    """The simulator (``SIMULATOR``) serving on ``port`` until the block ends."""
    (tmp / "sim.yaml").write_text(SIMULATOR)
    process = subprocess.Popen(
        [sys.executable, "-m", "modelroute", "simulator", "--config", str(tmp / "sim.yaml"),
         "--port", str(port), "--until-stdin-closes"],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(30)


@contextlib.contextmanager
def running_cluster(
    tmp: Path, policy: str, *args: str, env: dict[str, str] | None = None
) -> Iterator[Cluster]:
    """Three ``serve`` processes with ``args`` over ``policy`` (formatted with the simulator's
    port as ``sim`` and a dead one as ``dead``), sharing a Redis prefix and a database."""
    require_redis()
    db = _pg_database()
    prefix = unique_prefix()
    sim_port, dead_port = free_port(), free_port()
    (tmp / "policy.yaml").write_text(policy.format(sim=sim_port, dead=dead_port))
    procs: list[subprocess.Popen[bytes]] = []
    cluster = Cluster([], procs, database_url(db), tmp, prefix=prefix)
    try:
        with simulator(tmp, sim_port):
            try:
                for i in range(3):
                    port = free_port()
                    log = tmp / f"serve-{i}.log"
                    proc = start_serve(
                        tmp / "policy.yaml", port,
                        "--store", database_url(db), "--spool-dir", str(tmp / f"spool-{i}"),
                        "--state", f"{REDIS_URL}?prefix={prefix}", "--log-level", "info", *args,
                        stderr=log, env=env,
                    )  # fmt: skip
                    procs.append(proc)
                    cluster.bases.append(f"http://127.0.0.1:{port}")
                    cluster.logs.append(log)
                for base, proc in zip(cluster.bases, procs, strict=True):
                    wait_ready(base, proc)
                yield cluster
            finally:
                for proc in procs:
                    stop(proc)
    finally:
        delete_prefix(prefix)
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {db} WITH (FORCE)"))


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("replicas"), POLICY) as running:
        yield running
