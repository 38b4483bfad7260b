"""`modelroute serve` with a PostgreSQL store it cannot reach at start-up (nothing listening,
a database not created yet): it starts, serves, says so in one log line and in /readyz, and
spools the records; once the database exists they arrive there, schema and all. A URL no
connection could ever use is still a one-line error at start-up, exit code 2.

The cluster is never stopped here: a database that does not exist yet is the outage."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from modelroute.records.stores.schema import CURRENT_VERSION

from ..conftest import run_cli
from ..gateway.harness import free_port
from ..serve_process import (
    get_json,
    port_is_free,
    post_chat,
    quickstart_policy,
    start_serve,
    stop,
    wait_for,
    wait_ready,
)
from .conftest import IN_CI, PG_ADMIN, ClusterLock, _admin, database_url


def _records(base: str) -> dict[str, object]:
    status, ready = get_json(f"{base}/readyz")
    assert status == 200 and ready["status"] == "ready"  # traffic never waits for records
    return dict(ready["records"])


def _one_store_line(stderr: Path) -> str:
    text = stderr.read_text()
    assert "Traceback" not in text, text
    lines = [line for line in text.splitlines() if "record store" in line]
    assert len(lines) == 1, text
    return lines[0]


def test_serve_starts_and_spools_while_nothing_listens_at_the_store(tmp_path: Path) -> None:
    policy, _ = quickstart_policy(tmp_path)
    port, closed = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    store = f"postgresql://postgres@127.0.0.1:{closed}/x"
    spool, stderr = tmp_path / "spool", tmp_path / "stderr"
    proc = start_serve(policy, port, "--store", store, "--spool-dir", str(spool), stderr=stderr)
    try:
        wait_ready(base, proc)
        answer, request_id = post_chat(base)
        assert answer["choices"][0]["message"]["content"] == "Paris"
        wait_for(lambda: _records(base)["spooled"] == 1, "the record never reached the spool")
        records = _records(base)
        assert records["state"] == "spooling" and records["error"]
        line = _one_store_line(stderr)
        assert "unreachable" in line and str(spool) in line
    finally:
        stop(proc)
    assert request_id in "".join(p.read_text() for p in spool.glob("spool-*.jsonl"))


@pytest.fixture
def missing_database() -> Iterator[str]:
    """The name of a database that does not exist yet on the machine's cluster (the test
    creates it), dropped afterwards. Holds the shared cluster lock like every PG test."""
    lock = ClusterLock()
    name = f"modelroute_test_{secrets.token_hex(6)}"
    try:
        asyncio.run(_admin("SELECT 1"))
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        lock.release()
        if IN_CI:
            pytest.fail(f"PostgreSQL unreachable at {PG_ADMIN}: {exc!r}")
        pytest.skip(f"PostgreSQL unreachable at {PG_ADMIN}: {exc!r}")
    try:
        yield name
    finally:
        asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        lock.release()


async def _stored(url: str, request_ids: list[str]) -> tuple[int, int]:
    """How many of these requests the database holds, and its schema version."""
    conn = await asyncpg.connect(url, timeout=5)
    try:
        found = await conn.fetchval(
            "SELECT COUNT(*) FROM requests WHERE request_id = ANY($1)", request_ids
        )
        version = await conn.fetchval("SELECT MAX(version) FROM schema_migrations")
    finally:
        await conn.close()
    return int(found), int(version)


def test_records_reach_a_database_created_after_start_up(
    tmp_path: Path, missing_database: str
) -> None:
    policy, _ = quickstart_policy(tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    url = database_url(missing_database)
    spool, stderr = tmp_path / "spool", tmp_path / "stderr"
    proc = start_serve(policy, port, "--store", url, "--spool-dir", str(spool), stderr=stderr)
    try:
        wait_ready(base, proc)
        ids = [post_chat(base)[1], post_chat(base)[1]]
        wait_for(lambda: _records(base)["spooled"] == 2, "the records never reached the spool")
        assert _records(base)["error"] == "InvalidCatalogNameError"
        assert "does not exist" in _one_store_line(stderr)

        asyncio.run(_admin(f"CREATE DATABASE {missing_database}"))
        wait_for(lambda: _records(base)["state"] == "ok", "the store never came back")
        assert _records(base)["spooled"] == 0
        ids.append(post_chat(base)[1])  # written straight to the store now
        wait_for(
            lambda: asyncio.run(_stored(url, ids)) == (3, CURRENT_VERSION),
            "the records did not all arrive in the new database",
        )
    finally:
        stop(proc)


@pytest.mark.parametrize(
    "store",
    [
        "mysql://root@127.0.0.1/records",  # a scheme we do not speak
        "postgresql://postgres@127.0.0.1:54x2/records",  # a mistyped port
        "postgres://postgres@127.0.0.1:5432/records?sslmode=requir",  # a mistyped option
    ],
)
def test_a_store_url_nothing_could_use_is_a_one_line_error(tmp_path: Path, store: str) -> None:
    policy, sim_port = quickstart_policy(tmp_path)
    done = run_cli("serve", str(policy), "--port", str(free_port()), "--store", store)
    assert done.returncode == 2
    assert done.stderr.startswith("error: --store: ") and done.stderr.count("\n") == 1
    assert port_is_free(sim_port)  # refused before anything started
