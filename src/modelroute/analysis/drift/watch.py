"""Drift checks inside the gateway: every ``every_s`` seconds, off the request path.

Each check runs in a worker thread with its own event loop and its own connection to the
store (a SQLite store's writer keeps its connection and thread to itself; a PostgreSQL one
its pool), so neither the requests nor the record writer wait for it: the database does the
aggregating, and what comes back to Python is bounded (groups and samples). A check that
fails (the store is unreachable) is logged and tried again at the next one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from modelroute.analysis.drift.alerts import Announcer
from modelroute.analysis.drift.check import Report, check
from modelroute.analysis.drift.settings import Thresholds, Windows
from modelroute.policy import Policy
from modelroute.records.stores import open_store

log = logging.getLogger("modelroute.drift")


class DriftWatch:
    def __init__(
        self,
        store_url: str,
        policy: Policy,
        announcer: Announcer,
        *,
        every_s: float,
        current_s: float = 86_400.0,
        baseline_s: float = 7 * 86_400.0,
        thresholds: Thresholds | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not every_s > 0:
            raise ValueError(f"the drift check interval must be above 0, got {every_s}")
        Windows.ending(0.0, current_s, baseline_s)  # refuse empty windows now
        self.store_url = store_url
        self.policy = policy
        self.announcer = announcer
        self.every_s = every_s
        self.current_s = current_s
        self.baseline_s = baseline_s
        self.thresholds = thresholds or Thresholds()
        self.clock = clock
        self.checks = 0  # completed checks, for tests
        self.last: Report | None = None
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> Report:
        """One check now, in a worker thread; its new alerts announced."""
        report = await asyncio.to_thread(asyncio.run, self._check())
        self.last = report
        self.checks += 1
        return report

    async def _check(self) -> Report:
        store = open_store(self.store_url)
        await store.open()
        try:
            windows = Windows.ending(self.clock(), self.current_s, self.baseline_s)
            report = await check(store, windows, self.thresholds, self.policy)
            await self.announcer.announce(store, report)
            return report
        finally:
            await store.close()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="modelroute-drift")

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("drift check failed; trying again in %.0f s", self.every_s)
            await asyncio.sleep(self.every_s)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
