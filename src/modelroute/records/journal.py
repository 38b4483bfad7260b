"""Records on disk before the answer leaves (``--records-durable``).

Without it, a record waits in the writer's queue for up to ``flush_interval_s`` (longer while
the store is slow): a process killed then (SIGKILL, the OOM killer) loses the records of
requests it had answered. With it, ``submit`` first appends the record to a journal file, one
``write`` call on an ``O_APPEND`` descriptor: once that returns, the record is in the
kernel's page cache and survives the process's death (not the machine's: there is no fsync
per record, which would cost milliseconds each).

The journal is a series of segment files in the spool directory, named like spool files
(``spool-<host>-<pid>.journal-<n>.jsonl``) and held under an exclusive ``flock`` by their
process. A segment is closed after ``segment_records`` records and deleted once every record
in it was handled by the writer (stored, or spooled). A process that dies leaves its segments
unlocked: the next writer that opens a spool in that directory (the restarted replica) adopts
them as it adopts orphaned spools, and replays them; the store skips the request ids it
already has, so a record journaled and also stored is kept once.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections import deque
from pathlib import Path

import orjson

from modelroute.records.record import RequestRecord
from modelroute.records.spool import spool_name

log = logging.getLogger("modelroute.records")

_OPTS = orjson.OPT_NON_STR_KEYS


class Journal:
    """Segments of records appended on submit and dropped once handled (see above)."""

    def __init__(self, directory: Path, segment_records: int = 2_000) -> None:
        self.directory = directory
        self.segment_records = segment_records
        self.failures = 0  # appends that did not reach the disk (the record is still queued)
        self._segments: deque[tuple[Path, int, int]] = deque()  # (path, fd, last seq + 1)
        self._fd: int | None = None
        self._path: Path | None = None
        self._count = 0  # records in the open segment
        self._serial = 0
        self._appended = 0  # records journaled so far
        self._handled = 0  # of those, handled by the writer (stored or spooled)

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self._rotate()

    def _rotate(self) -> None:
        if self._fd is not None and self._path is not None:
            self._segments.append((self._path, self._fd, self._appended))
        self._serial += 1
        stem = spool_name().removesuffix(".jsonl")
        path = self.directory / f"{stem}.journal-{self._serial}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # a fresh name: nobody holds it
        self._fd, self._path, self._count = fd, path, 0
        self._drop_handled()

    def append(self, record: RequestRecord) -> None:
        """On the request path: one serialisation and one ``write``. Never raises. Every
        record queued for the writer is counted, journaled or not (before ``open``)."""
        self._appended += 1
        fd = self._fd
        if fd is None:
            return
        try:
            data = orjson.dumps(record.to_dict(), option=_OPTS) + b"\n"
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
        except (OSError, TypeError, ValueError):
            self.failures += 1
            if self.failures == 1:
                log.exception("could not journal a record; it is still queued for the store")
        self._count += 1
        if self._count >= self.segment_records:
            self._rotate()

    def handled(self, records: int) -> None:
        """The writer stored or spooled the next ``records`` journaled records (in order)."""
        self._handled = min(self._appended, self._handled + records)
        self._drop_handled()
        if self._handled == self._appended and self._count and self._fd is not None:
            os.ftruncate(self._fd, 0)  # all handled: the open segment starts over
            self._count = 0

    def _drop_handled(self) -> None:
        while self._segments and self._segments[0][2] <= self._handled:
            path, fd, _ = self._segments.popleft()
            _remove(path, fd)

    def close(self) -> None:
        """After the writer drained its queue: every record is handled, nothing is kept."""
        while self._segments:
            path, fd, _ = self._segments.popleft()
            _remove(path, fd)
        if self._fd is not None and self._path is not None:
            _remove(self._path, self._fd)
        self._fd = self._path = None


def _remove(path: Path, fd: int) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)  # while we hold its lock: nobody adopts it meanwhile
    os.close(fd)
