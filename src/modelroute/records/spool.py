"""The on-disk spool: records the store could not take yet, in arrival order, one JSON per line.

One file per process, ``spool-<host>-<pid>.jsonl`` (the host too, for containers that share a
volume and all run as pid 1), held under an exclusive ``flock`` while its writer lives. The
lock, not the pid, says whether a file is orphaned: pids are reused, locks die with their
process. ``open`` appends every orphan's complete lines to this process's file and deletes it.

Appends are single ``write`` calls on an ``O_APPEND`` descriptor under a mutex (the loop's
worker thread and an overflowing ``submit`` on the event loop may append at once); reads use
``pread`` so they never move the shared file offset. A line cut short by a crash is dropped on
open; a line that does not parse is logged and skipped rather than blocking the replay forever.
Synchronous throughout: ``RecordWriter`` calls it from a worker thread, except the rare
overflow append.
"""

from __future__ import annotations

import fcntl
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from modelroute.records.record import RequestRecord

log = logging.getLogger("modelroute.records")

_BLOCK = 1 << 18
_OPTS = orjson.OPT_NON_STR_KEYS


@dataclass(slots=True)
class Chunk:
    """What one ``read`` took: the records, the byte offset after them, the lines consumed."""

    records: list[RequestRecord] = field(default_factory=list)
    end: int = 0
    lines: int = 0


def spool_name() -> str:
    """This process's spool file's name."""
    return f"spool-{socket.gethostname()}-{os.getpid()}.jsonl"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _complete_length(fd: int) -> int:
    """Bytes up to and including the last newline: a partial last line is a torn append."""
    end = os.fstat(fd).st_size
    while end > 0:
        start = max(0, end - _BLOCK)
        block = os.pread(fd, end - start, start)
        newline = block.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def _count_lines(fd: int, length: int) -> int:
    return sum(
        os.pread(fd, min(_BLOCK, length - pos), pos).count(b"\n")
        for pos in range(0, length, _BLOCK)
    )


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:  # adopted by another process meanwhile
        return 0.0


class Spool:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.path = directory / spool_name()
        self.pending = 0  # records after the replay offset
        self.lost = 0  # records that could not be written at all (disk errors, corrupt lines)
        self.rejected = 0  # records the store refused as data, set aside
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._size = 0  # bytes of complete lines in the file
        self._offset = 0  # bytes already replayed to the store

    # --- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.path = self.directory / spool_name()  # again: the process may have forked
        fd = self._claim()
        with self._lock:
            self._fd = fd
            self._size = _complete_length(fd)
            os.ftruncate(fd, self._size)  # we hold the lock: nobody else is appending
            self._offset = 0
            self.pending = _count_lines(fd, self._size)
        self._adopt_orphans()

    def _claim(self) -> int:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise RuntimeError(
                    f"spool {self.path} is held by another RecordWriter in this process; "
                    "give each writer its own spool_dir"
                ) from None
            try:
                ours = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                ours = False
            if ours:
                return fd
            os.close(fd)  # an adopter removed it between our open and our lock: start over

    def _adopt_orphans(self) -> None:
        others = [p for p in self.directory.glob("spool-*.jsonl") if p != self.path]
        for path in sorted(others, key=_mtime):  # oldest first: roughly the order of events
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if os.fstat(fd).st_nlink == 0:
                    continue  # another process adopted it first
                self._copy_from(fd)
                os.unlink(path)
                log.warning("adopted orphaned spool %s", path.name)
            except BlockingIOError:
                continue  # its writer is alive
            finally:
                os.close(fd)

    def _copy_from(self, src: int) -> None:
        length = _complete_length(src)
        for pos in range(0, length, _BLOCK):
            data = os.pread(src, min(_BLOCK, length - pos), pos)
            self._append_bytes(data, data.count(b"\n"))
        if length and self._fd is not None:
            os.fsync(self._fd)  # before the orphan is unlinked

    def close(self) -> None:
        with self._lock:
            if self._fd is None:
                return
            if self._size == 0:
                os.unlink(self.path)  # tidy; safe while we still hold its lock
            os.close(self._fd)  # releases the lock
            self._fd = None

    # --- appending --------------------------------------------------------------------------

    def append(self, records: list[RequestRecord], fsync: bool) -> None:
        """Never raises: a record that cannot reach the disk is logged and counted in ``lost``."""
        try:
            data = b"".join(orjson.dumps(r.to_dict(), option=_OPTS) + b"\n" for r in records)
            fd = self._append_bytes(data, len(records))
            # Outside the mutex so an overflowing submit never waits on the disk. The writer
            # closes the spool only after its appends returned, so fd stays valid here.
            if fsync and fd is not None:
                os.fsync(fd)
        except (OSError, TypeError, ValueError):
            self.lost += len(records)
            log.exception("could not spool %d records", len(records))

    def _append_bytes(self, data: bytes, lines: int) -> int | None:
        with self._lock:
            if self._fd is None:  # not open (before start, after close): append and let go
                self.directory.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                try:
                    _write_all(fd, data)
                finally:
                    os.close(fd)
                self.pending += lines
                return None
            try:
                _write_all(self._fd, data)
            except OSError:
                os.ftruncate(self._fd, self._size)  # no half line for the next append to join
                raise
            self._size += len(data)
            self.pending += lines
            return self._fd

    def reject(self, record: RequestRecord, reason: str) -> None:
        """Set a record the store refused aside, with the reason, for a person to look at."""
        path = self.directory / self.path.name.replace("spool-", "rejected-", 1)
        line = orjson.dumps({"reason": reason, "record": record.to_dict()}, option=_OPTS)
        log.error(
            "record %s refused by the store (%s); kept in %s", record.request_id, reason, path
        )
        try:
            with path.open("ab") as out:
                out.write(line + b"\n")
            self.rejected += 1
        except OSError:
            self.lost += 1
            log.exception("could not set record %s aside", record.request_id)

    # --- replaying --------------------------------------------------------------------------

    def read(self, limit: int) -> Chunk:
        """Up to ``limit`` lines after the replay offset (the offset moves on ``advance``)."""
        with self._lock:
            fd, pos, end = self._fd, self._offset, self._size
        chunk = Chunk(end=pos)
        if fd is None:
            return chunk
        data, i, at = b"", 0, pos
        while chunk.lines < limit:
            newline = data.find(b"\n", i)
            if newline < 0:
                if at >= end:
                    break
                block = os.pread(fd, min(_BLOCK, end - at), at)
                data, i, at = data[i:] + block, 0, at + len(block)
                continue
            line, i = data[i:newline], newline + 1
            chunk.end += len(line) + 1
            chunk.lines += 1
            try:
                chunk.records.append(RequestRecord.from_dict(orjson.loads(line)))
            except (ValueError, TypeError):
                self.lost += 1
                log.error("skipping a corrupt spool line at byte %d of %s", chunk.end, self.path)
        return chunk

    def advance(self, chunk: Chunk) -> None:
        with self._lock:
            self._offset = chunk.end
            self.pending -= chunk.lines

    def truncate_if_replayed(self) -> bool:
        """Empty the file once every line in it reached the store; False if more arrived."""
        with self._lock:
            if self._fd is None or self._offset != self._size:
                return False
            if self._size:
                os.ftruncate(self._fd, 0)
            self._size = self._offset = 0
            self.pending = 0
            return True
