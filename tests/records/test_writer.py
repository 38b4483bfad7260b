"""RecordWriter against real stores and real faults: PostgreSQL stopped mid-load, a table
locked by another session, a SQLite file locked by another connection, SIGTERM to a process in
the middle of a load. Every time, every submitted record is stored exactly once, and records
reach the store in the order they were submitted (through the spool when it is in use)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import orjson

from modelroute.records.record import RequestRecord
from modelroute.records.spool import Spool
from modelroute.records.stores import open_store
from modelroute.records.stores.base import Store
from modelroute.records.stores.postgres import PostgresStore
from modelroute.records.stores.sqlite import SqliteStore
from modelroute.records.writer import RecordWriter

from ..conftest import ROOT
from .conftest import (
    ClusterLock,
    attempt_count,
    make_store,
    pg_ctl,
    realistic,
    wait_until_accepting,
)
from .samples import all_records


class ArrivalLog:
    """A real store that also notes the ids of every write it acknowledged, in order."""

    def __init__(self, inner: Store) -> None:
        self.inner = inner
        self.order: list[str] = []

    async def write(self, batch: list[RequestRecord], *, backlog: int = 0) -> None:
        await self.inner.write(batch, backlog=backlog)
        self.order.extend(r.request_id for r in batch)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


async def load(writer: RecordWriter, submitted: list[str], seconds: float) -> None:
    """About 5,000 records a second, submitted the way the router does: from the loop."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for _ in range(50):
            record = realistic(len(submitted))
            writer.submit(record)
            submitted.append(record.request_id)
        await asyncio.sleep(0.01)


async def drained(writer: RecordWriter, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while writer.spool_size or writer.queue_depth:
        assert time.monotonic() < deadline, f"spool still holds {writer.spool_size}"
        await asyncio.sleep(0.05)


async def assert_exactly_once(store: Store, log: ArrivalLog, submitted: list[str]) -> None:
    assert len(set(submitted)) == len(submitted)
    assert await store.count() == len(submitted)
    assert await store.ids() == set(submitted)
    assert await attempt_count(store) == 2 * len(submitted)
    assert list(dict.fromkeys(log.order)) == submitted  # first arrivals in submission order


def spooled_lines(spool_dir: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in spool_dir.glob("spool-*.jsonl"))


# --- the spool on its own --------------------------------------------------------------------


def test_records_round_trip_through_the_spool_losslessly(tmp_path: Path) -> None:
    odd = realistic(1)
    odd.prompt = 'line one\nline "two" \u2028 — ünïcødé 🚀 \x00 end'
    odd.metadata = {"ключ": "значение", "empty": ""}
    odd.decision = {"nested": [{"a": None, "b": [1.5, -0.0, 1e-300, 2**53]}], "t": True}
    records = [*all_records(), odd, realistic(2)]
    spool = Spool(tmp_path)
    spool.open()
    spool.append(records[:4], fsync=True)
    spool.append(records[4:], fsync=False)
    chunk = spool.read(1000)
    assert chunk.records == records and chunk.lines == len(records)
    assert [r.to_dict() for r in chunk.records] == [r.to_dict() for r in records]
    spool.advance(chunk)
    assert spool.pending == 0 and spool.truncate_if_replayed()
    spool.close()
    assert list(tmp_path.iterdir()) == []  # an empty spool is removed on close


async def test_a_spool_left_by_a_dead_process_is_replayed_first(tmp_path: Path) -> None:
    spool_dir = tmp_path / "spool"
    spool_dir.mkdir()
    left = [realistic(i) for i in range(300)]
    lines = b"".join(orjson.dumps(r.to_dict()) + b"\n" for r in left)
    # A crash in the middle of an append leaves a torn last line: it is dropped, not replayed.
    (spool_dir / "spool-elsewhere-4242.jsonl").write_bytes(lines + b'{"request_id": "torn')
    log = ArrivalLog(SqliteStore(tmp_path / "r.db"))
    await log.open()
    writer = RecordWriter(log, spool_dir, retry_interval_s=0.1)  # type: ignore[arg-type]
    writer.submit(newer := realistic(300))
    await writer.start()
    await writer.close()
    assert log.order == [r.request_id for r in [*left, newer]]
    assert await log.count() == 301
    assert spooled_lines(spool_dir) == 0
    await log.close()


async def test_a_full_queue_spills_to_the_spool_and_nothing_is_lost(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "r.db")
    await store.open()
    writer = RecordWriter(store, tmp_path / "spool", queue_size=100, batch_size=50)
    submitted = [realistic(i) for i in range(1000)]
    for r in submitted:  # no await: the loop never gets to drain the queue in between
        writer.submit(r)
    assert writer.queue_depth == 100 and writer.spooled == 900
    await writer.start()
    await writer.close()
    assert await store.ids() == {r.request_id for r in submitted}
    assert writer.written >= 1000 and writer.lost == 0
    await store.close()


class BacklogLog(ArrivalLog):
    """Also notes the backlog the writer reported with each batch."""

    def __init__(self, inner: Store) -> None:
        super().__init__(inner)
        self.backlogs: list[tuple[int, int]] = []

    async def write(self, batch: list[RequestRecord], *, backlog: int = 0) -> None:
        self.backlogs.append((len(batch), backlog))
        await super().write(batch, backlog=backlog)


async def test_the_store_learns_how_many_records_wait_behind_each_batch(tmp_path: Path) -> None:
    # The SQLite store yields the CPU to the loop only when nothing waits (see its _yield).
    log = BacklogLog(SqliteStore(tmp_path / "r.db"))
    await log.open()
    writer = RecordWriter(log, tmp_path / "spool", batch_size=500)
    for i in range(1200):
        writer.submit(realistic(i))
    await writer.start()
    await writer.close()
    assert log.backlogs == [(500, 700), (500, 200), (200, 0)]
    assert await log.count() == 1200
    await log.close()


async def stored(log: BacklogLog, count: int) -> None:
    """Until ``count`` records are stored; the writers here flush after an hour at the
    earliest, so it fails (after 10 s, a fail-safe) only if nothing else starts a batch."""
    for _ in range(1000):
        if await log.count() >= count:
            return
        await asyncio.sleep(0.01)


async def test_a_batch_is_written_once_flush_size_records_wait_not_after_the_interval(
    tmp_path: Path,
) -> None:
    # Small batches while the writer keeps up: a batch's length is how long the requests in
    # flight wait for the core the writer shares with them.
    log = BacklogLog(SqliteStore(tmp_path / "r.db"))
    await log.open()
    writer = RecordWriter(log, tmp_path / "spool", flush_size=32, flush_interval_s=3600)
    await writer.start()
    for i in range(32):
        writer.submit(realistic(i))
    await stored(log, 32)
    assert log.backlogs == [(32, 0)]
    for i in range(32, 39):  # fewer than flush_size: these wait for the interval (or close)
        writer.submit(realistic(i))
    await asyncio.sleep(0.2)
    assert log.backlogs == [(32, 0)]
    await writer.close()
    assert log.backlogs == [(32, 0), (7, 0)]
    assert await log.count() == 39
    await log.close()


async def test_a_batch_holds_at_most_flush_size_unless_a_whole_batch_size_waits(
    tmp_path: Path,
) -> None:
    # Taking everything that arrived while the writer woke would let each batch grow the
    # next; a backlog of a whole batch_size means it is behind, and is taken at once.
    log = BacklogLog(SqliteStore(tmp_path / "r.db"))
    await log.open()
    writer = RecordWriter(
        log, tmp_path / "spool", flush_size=64, batch_size=500, flush_interval_s=3600
    )
    await writer.start()
    for i in range(600):
        writer.submit(realistic(i))
    await stored(log, 564)
    assert log.backlogs == [(500, 100), (64, 36)]
    await writer.close()
    assert log.backlogs[2:] == [(36, 0)]
    assert await log.count() == 600
    await log.close()


def test_the_flush_size_is_the_stores_own_unless_given(tmp_path: Path) -> None:
    # SQLite's thread shares the serving core (small batches); PostgreSQL inserts on its
    # server, and small batches only add fixed costs there (batches as before).
    sqlite_store = SqliteStore(tmp_path / "r.db")
    assert RecordWriter(sqlite_store, tmp_path / "s1").flush_size == 64
    assert RecordWriter(sqlite_store, tmp_path / "s2", flush_size=16).flush_size == 16
    assert RecordWriter(sqlite_store, tmp_path / "s3", batch_size=40).flush_size == 40
    pg_store = PostgresStore("postgresql://127.0.0.1/unused")
    assert RecordWriter(pg_store, tmp_path / "s4", batch_size=300).flush_size == 300


async def test_a_record_the_store_refuses_is_set_aside_not_retried_forever(
    store_target: Path | str, tmp_path: Path
) -> None:
    store = make_store(store_target)
    await store.open()
    log = ArrivalLog(store)
    writer = RecordWriter(log, tmp_path / "spool", batch_size=100)  # type: ignore[arg-type]
    await writer.start()
    good, bad = [], []
    for i in range(1000):
        record = realistic(i)
        if i in (0, 517, 999):
            record.status = None  # type: ignore[assignment]  # violates NOT NULL
            bad.append(record.request_id)
        else:
            good.append(record.request_id)
        writer.submit(record)
    await writer.close()
    assert writer.rejected == 3 and writer.lost == 0 and writer.spool_size == 0
    assert await store.ids() == set(good)
    assert list(dict.fromkeys(log.order)) == good
    (aside,) = (tmp_path / "spool").glob("rejected-*.jsonl")
    lines = [orjson.loads(line) for line in aside.read_bytes().splitlines()]
    assert [line["record"]["request_id"] for line in lines] == bad
    assert all(line["reason"] for line in lines)
    await store.close()


async def test_records_outlive_a_writer_closed_while_the_store_is_down(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    store = SqliteStore(path, busy_timeout_s=0.1)
    await store.open()
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN EXCLUSIVE")
    writer = RecordWriter(store, tmp_path / "spool", write_timeout_s=1.0)
    await writer.start()
    submitted = [realistic(i) for i in range(2000)]
    for r in submitted:
        writer.submit(r)
    await writer.close()  # the store refuses: everything ends up in the spool
    assert writer.spool_size == 2000 and spooled_lines(tmp_path / "spool") == 2000
    locker.execute("COMMIT")
    locker.close()
    restarted = RecordWriter(store, tmp_path / "spool")
    await restarted.start()
    await restarted.close()
    assert await store.ids() == {r.request_id for r in submitted}
    assert spooled_lines(tmp_path / "spool") == 0
    await store.close()


# --- faults in the middle of a load ----------------------------------------------------------


async def test_postgres_stopped_mid_load(
    pg_url: str, pg_cluster: ClusterLock, tmp_path: Path
) -> None:
    await asyncio.to_thread(pg_cluster.exclusive)
    store = PostgresStore(pg_url, write_timeout_s=1.0)
    await store.open()
    log = ArrivalLog(store)
    writer = RecordWriter(log, tmp_path / "spool", retry_interval_s=0.2)  # type: ignore[arg-type]
    await writer.start()
    submitted: list[str] = []
    try:
        await load(writer, submitted, 1.0)
        await asyncio.to_thread(pg_ctl, "stop")
        await load(writer, submitted, 2.0)
        # The outage really happened, and the spool took it.
        assert writer.spool_size > 0, (writer.store_errors, writer.written)
    finally:
        await asyncio.to_thread(pg_ctl, "start")
    await asyncio.to_thread(wait_until_accepting)
    await load(writer, submitted, 1.0)
    await drained(writer)
    await writer.close()
    assert writer.store_errors > 0 and writer.spooled > 0 and writer.lost == 0
    await assert_exactly_once(store, log, submitted)
    await store.close()


async def test_postgres_table_locked_mid_load(pg_url: str, tmp_path: Path) -> None:
    store = PostgresStore(pg_url, write_timeout_s=0.5)
    await store.open()
    log = ArrivalLog(store)
    writer = RecordWriter(log, tmp_path / "spool", retry_interval_s=0.2)  # type: ignore[arg-type]
    await writer.start()
    submitted: list[str] = []
    await load(writer, submitted, 1.0)
    locker = await asyncpg.connect(pg_url)
    try:
        async with locker.transaction():
            await locker.execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
            await load(writer, submitted, 3.0)
            assert writer.spool_size > 0, (writer.store_errors, writer.written)
    finally:
        await locker.close()
    await load(writer, submitted, 1.0)
    await drained(writer)
    await writer.close()
    assert writer.store_errors > 0 and writer.spooled > 0
    await assert_exactly_once(store, log, submitted)
    await store.close()


async def test_sqlite_locked_by_another_connection_mid_load(tmp_path: Path) -> None:
    path = tmp_path / "r.db"
    store = SqliteStore(path, busy_timeout_s=0.3)
    await store.open()
    log = ArrivalLog(store)
    writer = RecordWriter(log, tmp_path / "spool", retry_interval_s=0.2)  # type: ignore[arg-type]
    await writer.start()
    submitted: list[str] = []
    await load(writer, submitted, 1.0)
    locker = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    locker.execute("PRAGMA busy_timeout = 10000")
    try:
        await asyncio.to_thread(locker.execute, "BEGIN EXCLUSIVE")
        await load(writer, submitted, 3.0)
        assert writer.spool_size > 0, (writer.store_errors, writer.written)
    finally:
        await asyncio.to_thread(locker.execute, "COMMIT")
        locker.close()
    await load(writer, submitted, 1.0)
    await drained(writer)
    await writer.close()
    assert writer.store_errors > 0 and writer.spooled > 0
    await assert_exactly_once(store, log, submitted)
    await store.close()


# --- SIGTERM in the middle of a load ---------------------------------------------------------


async def child(target: str, spool_dir: str, ids_out: str) -> None:
    """The gateway's shape: submit continuously; on SIGTERM stop, ``await writer.close()``."""
    store = open_store(target)
    await store.open()
    writer = RecordWriter(store, spool_dir)
    await writer.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print("ready", flush=True)
    submitted: list[str] = []
    while not stop.is_set():
        for _ in range(100):
            record = realistic(len(submitted))
            writer.submit(record)
            submitted.append(record.request_id)
        await asyncio.sleep(0.002)
    await writer.close()
    await store.close()
    Path(ids_out).write_text("\n".join(submitted))
    print(f"submitted={len(submitted)} spooled={writer.spooled} left={writer.spool_size}")


async def test_sigterm_mid_load_loses_nothing(store_target: Path | str, tmp_path: Path) -> None:
    target = str(store_target)  # a SQLite path or a fresh PostgreSQL database
    ids_out = tmp_path / "ids.txt"
    args = [sys.executable, "-m", "tests.records.test_writer", target, str(tmp_path / "spool")]
    proc = subprocess.Popen(
        [*args, str(ids_out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert await asyncio.to_thread(proc.stdout.readline) == "ready\n"
    await asyncio.sleep(1.5)
    os.kill(proc.pid, signal.SIGTERM)
    out, err = await asyncio.to_thread(proc.communicate, timeout=60)
    assert proc.returncode == 0, err
    assert "left=0" in out, out
    submitted = ids_out.read_text().split("\n")
    assert len(submitted) > 1000, out  # it really was mid-load
    store = open_store(target)
    await store.open()
    try:
        assert await store.count() == len(submitted) == len(set(submitted))
        assert await store.ids() == set(submitted)
        assert await attempt_count(store) == 2 * len(submitted)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(child(*sys.argv[1:4]))
