"""Getting every record into the store, exactly once, without ever slowing a request.

```
submit(record) ──► bounded deque ─────────► background loop: a batch as soon as flush_size
      │ (queue full)                            wait, or whatever arrived within
      │                                         flush_interval_s; never more than batch_size
      ▼                                              │
    spool ◄── batch the store refused or timed out ──┤ store healthy, spool empty
      │                                              ▼
      └── replayed in order every retry_interval_s ─► store.write(batch)   (idempotent)
```

- ``flush_size`` records waiting start a batch before the interval is up, and a batch takes
  at most that many however many wait, unless a whole ``batch_size`` does: then the writer
  is behind, and takes ``batch_size`` at once, where each row costs least. By default it is
  the store's own ``flush_size``, else ``batch_size``. The SQLite store's is 64: its thread
  shares the serving process's core, and a batch runs uninterrupted (the thread has slept,
  so the scheduler lets it finish before the busy event loop runs again), so the batch's
  length is how long the requests in flight wait. Measured at full load on one core
  (``bench/records_tail.py``): batches of at most 64 instead of the ~250 that 50 ms gathered
  cut the p99 at concurrency 16 by 23-31% (10.8 to 7.5 ms, 13.9 to 10.7 ms) for 2-6% of the
  throughput; 32 gave the same p99 for 8%, and 128 a p99 of 8.5 ms. PostgreSQL keeps large
  batches: its inserts run on the server, and at 64 a batch's fixed costs came to 12.5 µs
  more per record in the serving process than at 500 (``bench/store_batch.py``).
- ``submit`` never blocks and never drops: it only enqueues; when the queue is full the record
  is appended to the spool file at once (a buffered write, no fsync).
- While the spool holds anything, new batches are appended behind it rather than written, so
  records reach the store in the order they reached the writer (a record that overflowed the
  queue is the exception: it may overtake the ones still queued).
- The spool is truncated only once everything in it has been written. A crash in between
  replays some records twice; the store skips request ids it already has, so each record is
  stored exactly once.
- The spool is a JSON-lines file per process (``spool-<host>-<pid>.jsonl``), held under an
  exclusive ``flock`` for the writer's lifetime. ``start`` adopts the files of processes that
  are gone (their lock is free) and replays them first. Batches spooled by the loop are
  fsynced (in a worker thread, so the loop does not wait): the spool only fills during an
  outage, when a lost machine would otherwise lose exactly the records nobody has stored.
- With ``durable``, ``submit`` first appends each record to a journal (``journal.py``), so a
  process killed before its queue reached the store loses none of the records of requests it
  answered: the next writer on the same spool directory replays them.
- The writer opens its store. One that cannot be reached at start-up (a database down or not
  yet created) is an outage like any other: records spool, the loop tries to open it again
  every ``retry_interval_s`` (schema migrations run then), and the spool is replayed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

from modelroute.records.journal import Journal
from modelroute.records.record import RequestRecord
from modelroute.records.spool import Spool
from modelroute.records.stores.base import RecordRejected, Store

log = logging.getLogger("modelroute.records")


class RecordWriter:
    """A ``RecordSink`` that writes to a ``Store`` in batches, spooling to disk on failure.

    ``start`` opens the store (riding out an unreachable one) and must run before records can
    be written (records submitted earlier wait in the queue); ``close`` drains everything. The
    caller closes the store afterwards.
    """

    def __init__(
        self,
        store: Store,
        spool_dir: str | Path,
        *,
        queue_size: int = 10_000,
        batch_size: int = 500,
        flush_size: int | None = None,
        flush_interval_s: float = 0.05,
        write_timeout_s: float = 2.0,
        retry_interval_s: float = 1.0,
        fsync: bool = True,
        durable: bool = False,
    ) -> None:
        self.store = store
        self.batch_size = batch_size
        if flush_size is None:
            flush_size = getattr(store, "flush_size", batch_size)
        self.flush_size = max(1, min(flush_size, batch_size))
        self.flush_interval_s = flush_interval_s
        self.write_timeout_s = write_timeout_s
        self.retry_interval_s = retry_interval_s
        self.fsync = fsync
        # A plain deque, not an asyncio.Queue: one loop fills it and one task empties it, and
        # the loop wakes the task itself (``_wake``), so a queue's waiter bookkeeping on every
        # put and get is work for nothing, once per request.
        self.queue_size = queue_size
        self._room = queue_size if queue_size > 0 else float("inf")  # 0: unbounded, as asyncio's
        self._queue: deque[RequestRecord] = deque()
        self._spool = Spool(Path(spool_dir))
        # ``durable``: each queued record is first appended to a journal (``journal.py``)
        self._journal = Journal(Path(spool_dir)) if durable else None
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._retry_at = 0.0  # monotonic time of the next replay attempt
        self._opened = False  # the store answered ``open`` once; until then writes spool
        self._outage = False
        self._error = ""  # the failure that began the current outage (its type), for health
        self._written = self._spooled = self._store_errors = 0
        # (hash, version, source, text) of policies to keep in the store once it opens
        self._policies: list[tuple[str, str | None, str, str]] = []

    # --- metrics ----------------------------------------------------------------------------

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def spool_size(self) -> int:
        """Records in the spool not yet written to the store."""
        return self._spool.pending

    @property
    def written(self) -> int:
        """Records handed to successful store writes (replays included)."""
        return self._written

    @property
    def spooled(self) -> int:
        return self._spooled

    @property
    def store_errors(self) -> int:
        """Store writes that failed or timed out."""
        return self._store_errors

    @property
    def rejected(self) -> int:
        """Records the store refused as data (set aside in ``rejected-*.jsonl``, not retried)."""
        return self._spool.rejected

    @property
    def lost(self) -> int:
        """Records that could reach neither the store nor the spool (the disk failed too)."""
        return self._spool.lost

    def health(self) -> dict[str, Any]:
        """Whether records reach the store, for ``/readyz``: ``ok``, or ``spooling`` while
        the store fails (the error's type only; the log line has the whole message)."""
        health: dict[str, Any] = {
            "state": "spooling" if self._outage else "ok",
            "queued": self.queue_depth,
            "spooled": self.spool_size,
        }
        if self._outage:
            health["error"] = self._error
        return health

    # --- the request path -------------------------------------------------------------------

    def submit(self, record: RequestRecord) -> None:
        queue = self._queue
        if not self._closed and len(queue) < self._room:
            if self._journal is not None:
                self._journal.append(record)
            queue.append(record)
            if len(queue) == self.flush_size:
                self._wake.set()
            return
        # Queue full (the store is far behind) or writer closed: to disk now, no fsync.
        self._spool.append([record], fsync=False)
        self._spooled += 1

    def remember_policy(
        self, policy_hash: str, version: str | None, source: str, text: str
    ) -> None:
        """Keep a policy's text in the store (once per hash) as soon as the store is open:
        the dashboard shows and diffs the versions records were served under."""
        self._policies.append((policy_hash, version, source, text))

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Claim this process's spool, adopt spools left by dead processes, start the loop
        (which replays whatever the spool holds before writing anything new)."""
        if self._task is not None:
            return
        await asyncio.to_thread(self._spool.open)  # adopts the journals of dead processes
        if self._journal is not None:
            await asyncio.to_thread(self._journal.open)
        if self._spool.pending:
            log.warning("replaying %d spooled records", self._spool.pending)
        await self._open_store()
        self._task = asyncio.create_task(self._run(), name="modelroute-record-writer")

    async def close(self) -> None:
        """Write everything queued to the store, or to the spool if the store is failing."""
        if self._closed:
            return
        if self._task is None:
            await self.start()
        assert self._task is not None
        self._closing = True
        self._wake.set()
        await self._task
        self._closed = True
        # Records submitted while the loop was finishing: the loop is gone, spool them.
        rest = list(self._queue)
        self._queue.clear()
        if rest:
            await self._to_spool(rest)
        if self._journal is not None:
            self._journal.close()
        await asyncio.to_thread(self._spool.close)

    # --- the background loop ----------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            try:
                batch = await self._take_batch()
                if not self._opened and time.monotonic() >= self._retry_at:
                    await self._open_store()
                if batch:
                    await self._handle(batch)
                    if self._journal is not None:
                        self._journal.handled(len(batch))
                if self._spool.pending and time.monotonic() >= self._retry_at:
                    await self._replay()
            except Exception:  # a bug here must not stop the writer: records keep spooling
                log.exception("record writer loop failed; continuing")
                await asyncio.sleep(self.retry_interval_s)
            if self._closing and not self._queue:
                return

    async def _take_batch(self) -> list[RequestRecord]:
        if len(self._queue) < self.flush_size and not self._closing:
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_interval_s):
                    await self._wake.wait()
        queue = self._queue
        # At most flush_size while the writer keeps up, however many arrived while it was
        # woken: taking them all lets each batch grow the next one. A backlog of a whole
        # batch, or closing, is drained at the cheapest cost per row instead.
        whole = self._closing or len(queue) >= self.batch_size
        size = self.batch_size if whole else self.flush_size
        return [queue.popleft() for _ in range(min(len(queue), size))]

    async def _handle(self, batch: list[RequestRecord]) -> None:
        if self._spool.pending:  # keep order: this batch goes behind what is spooled
            await self._to_spool(batch)
            return
        unstored = await self._write(batch)
        if unstored:
            await self._to_spool(unstored)

    async def _open_store(self) -> bool:
        """Open the store (connect, migrate); on failure begin or continue an outage."""
        try:
            await self.store.open()
        except Exception as exc:  # unreachable, no such database, refused: retried later
            where = self._spool.directory
            self._failed(exc, f"record store unreachable ({_brief(exc)}); records spool to {where}")
            return False
        self._opened = True
        await self._store_policies()
        if self._outage and not self._spool.pending:
            self._outage = False
            log.warning("record store reachable again")
        return True

    async def _store_policies(self) -> None:
        """Policies to remember: stored once the store is open; a failure is logged, not
        retried (the dashboard then lacks that version's text, nothing else does)."""
        policies, self._policies = self._policies, []
        for policy in policies:
            try:
                await self.store.remember_policy(*policy)
            except Exception as exc:  # never let it stop the records
                log.warning("could not store policy %s: %s", policy[0][:12], _brief(exc))

    def _failed(self, exc: Exception, message: str) -> None:
        self._store_errors += 1
        self._retry_at = time.monotonic() + self.retry_interval_s
        if not self._outage:  # one line an outage, not one a batch
            self._outage = True
            self._error = type(exc).__name__
            log.warning("%s", message)

    async def _write(self, batch: list[RequestRecord]) -> list[RequestRecord]:
        """Write a batch; returns the records not stored (a suffix of it, in order)."""
        if not self._opened:  # never reached yet: the loop keeps trying to open it
            return batch
        try:
            async with asyncio.timeout(self.write_timeout_s):
                await self.store.write(batch, backlog=len(self._queue))
        except RecordRejected as exc:
            return await self._isolate(batch, exc)
        except Exception as exc:  # any driver error or the timeout: the batch is spooled
            self._failed(exc, f"record store write failed ({exc!r}); spooling until it recovers")
            return batch
        self._written += len(batch)
        if self._outage and not self._spool.pending:
            self._outage = False
            log.warning("record store recovered")
        return []

    async def _isolate(
        self, batch: list[RequestRecord], exc: RecordRejected
    ) -> list[RequestRecord]:
        """Halve a rejected batch until the bad records stand alone, store the rest, and set
        the bad ones aside (never retried: the store would refuse them forever)."""
        if len(batch) == 1:
            await asyncio.to_thread(self._spool.reject, batch[0], str(exc))
            return []
        half = len(batch) // 2
        unstored = await self._write(batch[:half])
        if unstored:  # the store failed for another reason: keep the order, stop here
            return unstored + batch[half:]
        return await self._write(batch[half:])

    async def _to_spool(self, batch: list[RequestRecord]) -> None:
        await asyncio.to_thread(self._spool.append, batch, self.fsync)
        self._spooled += len(batch)

    async def _replay(self) -> None:
        """Write the spool to the store in order, a batch at a time; stop at the first failure.
        Yields back to the loop when the queue half fills, so replaying never starves it."""
        while self._spool.pending:
            chunk = await asyncio.to_thread(self._spool.read, self.batch_size)
            if not chunk.lines:
                break
            if chunk.records and await self._write(chunk.records):
                return  # retried from the same line later; what was stored is skipped then
            self._spool.advance(chunk)
            if len(self._queue) * 2 >= (self.queue_size or 1) and not self._closing:
                return
        if await asyncio.to_thread(self._spool.truncate_if_replayed) and self._outage:
            self._outage = False
            log.warning("record store recovered; spool replayed")


def _brief(exc: Exception) -> str:
    """An exception as one line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
