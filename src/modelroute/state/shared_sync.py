"""The background loop that keeps a replica's in-process state in step with Redis.

``SharedBreakers`` and ``SharedStats`` work alike: the request path only queues, and a task
writes what is queued every ``interval_s`` and reads the shared state every ``poll_s`` (one
script per sync). While Redis cannot be reached the replica keeps its own view: each failure
is counted (``errors``, ``on_error``) and logged at most once per ``quiet_s``. A subclass says
what is pending, how one sync goes, and what a failure is called.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable

from redis.asyncio import Redis

log = logging.getLogger("modelroute.state")

ErrorHook = Callable[[str, str], None]


class SyncLoop:
    """Batching and polling to Redis in the background, failures counted and logged."""

    # what ``on_error`` is told fell back to local state, and the warning's explanation
    _component = ""
    _fallback = ""

    def __init__(
        self,
        client: Redis,
        interval_s: float,
        poll_s: float,
        on_error: ErrorHook | None,
        quiet_s: float,
    ) -> None:
        self.client = client
        self._interval = interval_s
        self._poll = poll_s
        self._on_error = on_error
        self._quiet = quiet_s
        self._task: asyncio.Task[None] | None = None
        # Set before the sync task is cancelled: a client library that turns the
        # cancellation into another error (caught below, as Redis being away) must not
        # keep the loop, and the shutdown waiting for it, running.
        self._stopping = False
        self._logged = float("-inf")
        self.errors = 0

    def _pending(self) -> bool:
        """Whether something is queued to write."""
        raise NotImplementedError

    async def sync(self, fresh: bool = True) -> None:
        """Write what is queued; with ``fresh``, read the shared state too."""
        raise NotImplementedError

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _stop(self) -> None:
        """Stop syncing, after one last write of what is queued."""
        if self._task is not None:
            self._stopping = True
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            with contextlib.suppress(Exception):
                await self.sync(False)
        await self.client.aclose()

    async def _run(self) -> None:
        next_poll = 0.0
        while not self._stopping:
            await asyncio.sleep(self._interval)
            now = time.monotonic()
            poll = now >= next_poll
            if not (poll or self._pending()):
                continue
            if poll:
                next_poll = now + self._poll
            try:
                await self.sync(poll)
            except Exception as exc:  # Redis away: each replica's own view meanwhile
                self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self.errors += 1
        if self._on_error is not None:
            self._on_error(self._component, "local")
        now = time.monotonic()
        if now - self._logged >= self._quiet:
            self._logged = now
            log.warning(
                "shared state unreachable (%s: %s): %s until it is back",
                type(exc).__name__,
                exc,
                self._fallback,
            )


def as_str(value: bytes | str) -> str:
    """A string Redis returned, as ``str``."""
    return value.decode() if isinstance(value, bytes) else value
