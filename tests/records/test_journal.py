"""The records journal (``RecordWriter(durable=True)``): each queued record is on disk as soon
as ``submit`` returns, dropped once the writer stored or spooled it, and replayed by the next
writer on the directory when its process died first."""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from modelroute.records.journal import Journal
from modelroute.records.stores.sqlite import SqliteStore
from modelroute.records.writer import RecordWriter

from .samples import record, success


def journal_files(directory: Path) -> list[Path]:
    return sorted(directory.glob("spool-*.journal-*.jsonl"))


def journaled_ids(directory: Path) -> list[str]:
    return [
        orjson.loads(line)["request_id"]
        for path in journal_files(directory)
        for line in path.read_bytes().splitlines()
    ]


def numbered(n: int):  # type: ignore[no-untyped-def]
    made = success()
    return record(n, made.attempts, made.latency_ms)


async def test_a_record_is_on_disk_when_submit_returns(tmp_path: Path) -> None:
    store = SqliteStore(str(tmp_path / "r.db"))
    writer = RecordWriter(store, tmp_path / "spool", durable=True, flush_interval_s=3600)
    await writer.start()
    for n in range(5):
        writer.submit(numbered(n))
    assert journaled_ids(tmp_path / "spool") == [f"req-{n}" for n in range(5)]
    await writer.close()
    assert journal_files(tmp_path / "spool") == []  # stored: nothing kept
    assert {r["request_id"] for r in await store.get_many([f"req-{n}" for n in range(5)])} == {
        f"req-{n}" for n in range(5)
    }
    await store.close()


def test_segments_are_dropped_once_handled(tmp_path: Path) -> None:
    journal = Journal(tmp_path, segment_records=3)
    journal.open()
    for n in range(7):
        journal.append(numbered(n))
    assert len(journal_files(tmp_path)) == 3  # 3 + 3 + 1
    journal.handled(4)  # the first segment is done, the second not yet
    assert journaled_ids(tmp_path) == [f"req-{n}" for n in range(3, 7)]
    journal.handled(3)  # everything: the open segment starts over
    assert journaled_ids(tmp_path) == []
    journal.append(numbered(7))
    assert journaled_ids(tmp_path) == ["req-7"]
    journal.close()
    assert journal_files(tmp_path) == []


async def test_the_journal_of_a_dead_process_is_replayed_by_the_next_writer(
    tmp_path: Path,
) -> None:
    spool = tmp_path / "spool"
    dead = Journal(spool)
    dead.open()
    for n in range(4):
        dead.append(numbered(n))
    assert dead._fd is not None
    os.close(dead._fd)  # what dying does: the lock goes, the file stays
    store = SqliteStore(str(tmp_path / "r.db"))
    writer = RecordWriter(store, spool, durable=True)
    await writer.start()  # adopts it, as it adopts a dead process's spool
    await writer.close()
    stored = await store.get_many([f"req-{n}" for n in range(4)])
    assert sorted(r["request_id"] for r in stored) == [f"req-{n}" for n in range(4)]
    assert journal_files(spool) == []
    await store.close()
