"""Real stores for the records tests: a fresh PostgreSQL database per test, SQLite in tmp_path.

PostgreSQL is the machine's own cluster (``MODELROUTE_TEST_PG``, default
``postgresql://postgres@127.0.0.1:5432/postgres`` for the admin connection). Without it the
PostgreSQL tests skip, except under ``CI=true`` where they fail: CI must not go green on a
database it never reached. Tests that stop the cluster start it again in ``finally``, and the
``pg_url`` teardown starts it once more in case such a test died half-way.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from modelroute.records.ids import uuid7
from modelroute.records.record import Attempt, RequestRecord
from modelroute.records.stores.base import Store
from modelroute.records.stores.postgres import PostgresStore
from modelroute.records.stores.sqlite import SqliteStore
from modelroute.types import Usage

PG_ADMIN = os.environ.get("MODELROUTE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_CLUSTER = os.environ.get("MODELROUTE_TEST_PG_CLUSTER", "15 main").split()
IN_CI = os.environ.get("CI", "").lower() == "true"


def database_url(name: str) -> str:
    parts = urlsplit(PG_ADMIN)
    return urlunsplit(parts._replace(path=f"/{name}"))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def pg_ctl(action: str) -> None:
    """Stop or start the machine's cluster (the tests run as root, as CI does)."""
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", *PG_CLUSTER, action],
        check=True,
        capture_output=True,
        timeout=120,
    )


def pg_running() -> bool:
    probe = ["pg_ctlcluster", "--skip-systemctl-redirect", *PG_CLUSTER, "status"]
    return subprocess.run(probe, capture_output=True, timeout=30).returncode == 0


def wait_until_accepting(timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            asyncio.run(_admin("SELECT 1"))
            return
        except (OSError, asyncpg.PostgresError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def ensure_pg_started() -> None:
    if not pg_running():
        pg_ctl("start")
    wait_until_accepting()


class ClusterLock:
    """Keeps test runs on one machine from pulling the cluster out from under each other.

    Every test using ``pg_url`` holds a shared ``flock`` on a well-known file; a test that
    stops the cluster converts it to exclusive first, so it waits for PostgreSQL tests of
    other pytest runs (another developer's, say) to finish, and they wait for it."""

    PATH = Path(tempfile.gettempdir()) / "modelroute-tests-postgres.lock"

    def __init__(self) -> None:
        self._fd = os.open(self.PATH, os.O_RDWR | os.O_CREAT, 0o666)
        fcntl.flock(self._fd, fcntl.LOCK_SH)

    def exclusive(self) -> None:
        fcntl.flock(self._fd, fcntl.LOCK_EX)

    def release(self) -> None:
        os.close(self._fd)


@pytest.fixture
def pg_cluster() -> Iterator[ClusterLock]:
    lock = ClusterLock()
    try:
        yield lock
    finally:
        lock.release()


@pytest.fixture
def pg_url(pg_cluster: ClusterLock) -> Iterator[str]:
    """A fresh, empty database for this test, dropped afterwards."""
    name = f"modelroute_test_{secrets.token_hex(6)}"
    try:
        asyncio.run(_admin(f"CREATE DATABASE {name}"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"PostgreSQL unreachable at {PG_ADMIN}: {exc!r}"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)
    try:
        yield database_url(name)
    finally:
        ensure_pg_started()
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


@pytest.fixture(params=["sqlite", "postgres"])
def store_target(request: pytest.FixtureRequest, tmp_path: Path) -> Path | str:
    """A SQLite path or a fresh PostgreSQL URL. Sync, so ``pg_url`` can run its own loop."""
    if request.param == "sqlite":
        return tmp_path / "records.db"
    return str(request.getfixturevalue("pg_url"))


def make_store(target: Path | str) -> Store:
    return SqliteStore(target) if isinstance(target, Path) else PostgresStore(target)


@pytest.fixture
async def store(store_target: Path | str) -> AsyncIterator[Store]:
    """Each store test runs against both stores, opened and migrated."""
    opened = make_store(store_target)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def attempt_count(store: Any) -> int:
    """Attempts stored, read past the Store API: it proves no attempt was stored twice."""
    if isinstance(store, SqliteStore):
        import sqlite3

        with sqlite3.connect(store.path) as conn:
            sql = "SELECT SUM(json_array_length(body, '$[18]')) FROM requests"
            return int(conn.execute(sql).fetchone()[0] or 0)
    assert isinstance(store, PostgresStore)
    async with store.pool.acquire() as conn:
        sql = "SELECT SUM(jsonb_array_length(body -> 18)) FROM requests"
        return int(await conn.fetchval(sql) or 0)


def realistic(i: int, started_at: float | None = None) -> RequestRecord:
    """A record as the router makes one: a failed attempt, a fallback that answered, a decision
    with steps and rejections, usage, cost, metadata and (truncated) content."""
    usage = Usage(1200 + i % 50, 180, cached_input_tokens=1024, reasoning_tokens=40)
    failed = Attempt(
        model="fast", provider="openai", model_id="gpt-4o-mini", tier=0, started_ms=0.4,
        latency_ms=812.5, outcome="failed", failure="rate_limited", status=429,
        message="rate limit reached", retry_after_s=2.0,
    )  # fmt: skip
    ok = Attempt(
        model="steady", provider="anthropic", model_id="claude-3-5-haiku", tier=0,
        started_ms=815.0, latency_ms=1432.25, ttft_ms=301.0,
        reported_model="claude-3-5-haiku-20241022", fingerprint=None, usage=usage,
        cost_usd=0.00123, confidence=0.91,
    )  # fmt: skip
    return RequestRecord(
        request_id=str(uuid7()),
        started_at=time.time() if started_at is None else started_at,
        route="support-triage", task="classify", selected_by="header",
        metadata={"tenant": f"t{i % 7}", "seq": str(i)},
        policy_hash="sha256:" + "ab" * 32, policy_version="2026-11-01", client_key_id="k_3f9a",
        decision={
            "route": "support-triage", "strategy": "cheapest-qualified",
            "steps": [{"tier": 0, "models": ["fast", "steady"], "est_cost_usd": 0.0011}],
            "rejections": [{"model": "large", "reason": "cost_ceiling", "est": 0.02}],
        },
        attempts=[failed, ok], final_model="steady",
        final_reported_model="claude-3-5-haiku-20241022", confidence=0.91,
        usage=usage, cost_usd=0.00123, latency_ms=2250.0 + i % 100, ttft_ms=1117.0,
        prompt="user: my invoice is wrong, order " + str(i), answer="billing",
    )  # fmt: skip
