"""``--records-durable``: a replica killed with SIGKILL (no shutdown, no drain) while its
records were still on their way to the store loses none of the requests it answered; the
replica restarted on the same spool directory stores them."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Iterator

import asyncpg
import pytest

from ..gateway.harness import free_port
from ..serve_process import start_serve, wait_ready
from ..state.conftest import REDIS_URL
from .conftest import POLICY, Cluster, running_cluster


@pytest.fixture(scope="module")
def durable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with running_cluster(tmp_path_factory.mktemp("durable"), POLICY, "--records-durable") as c:
        yield c


class TableLock:
    """The records table locked by another session: every store write waits behind it."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.held = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=lambda: asyncio.run(self._hold()), daemon=True)

    async def _hold(self) -> None:
        conn = await asyncpg.connect(self.url)
        try:
            async with conn.transaction():
                await conn.execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
                self.held.set()
                await asyncio.to_thread(self.release.wait, 120)
        finally:
            await conn.close()

    def __enter__(self) -> TableLock:
        self.thread.start()
        assert self.held.wait(30)
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.thread.join(30)


def test_a_killed_replica_loses_no_record_of_what_it_answered(durable: Cluster) -> None:
    with TableLock(durable.pg_url):
        results = durable.only(2).load(route="plain", requests=40, concurrency=4)
        os.kill(durable.procs[2].pid, signal.SIGKILL)  # records still queued or in flight
        assert durable.procs[2].wait(30) == -signal.SIGKILL
    answered = [r["request_id"] for r in results if r["status"] == 200]
    assert len(answered) == 40
    assert len(durable.records(answered)) < len(answered)  # the store had not got them all
    port = free_port()
    log = durable.tmp / "serve-2-restarted.log"
    again = start_serve(
        durable.tmp / "policy.yaml", port,
        "--store", durable.pg_url, "--spool-dir", str(durable.tmp / "spool-2"),
        "--state", f"{REDIS_URL}?prefix={durable.prefix}", "--records-durable",
        "--log-level", "info", stderr=log,
    )  # fmt: skip
    durable.procs.append(again)  # stopped with the others
    wait_ready(f"http://127.0.0.1:{port}", again)
    stored = durable.wait_for_records(answered)
    assert set(stored) == set(answered)
    assert all(r["status"] == "ok" and r["route"] == "plain" for r in stored.values())
