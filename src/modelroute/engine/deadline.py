"""A per-attempt time limit: what ``asyncio.timeout`` does, with less bookkeeping.

Every upstream call runs under one, so its cost is paid on every request: ``asyncio.timeout``
(Python 3.11) builds a state machine that supports rescheduling and nesting checks we never
use. This one schedules a timer that cancels the task, and on the way out turns that
cancellation, and only that one, into ``TimeoutError``.
"""

from __future__ import annotations

import asyncio
from types import TracebackType


class Deadline:
    __slots__ = ("_cancelling", "_expired", "_handle", "_seconds", "_task")

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._expired = False

    async def __aenter__(self) -> Deadline:
        task = asyncio.current_task()
        assert task is not None, "Deadline must be used inside a task"
        self._task = task
        self._cancelling = task.cancelling()
        loop = asyncio.get_running_loop()
        self._handle = loop.call_at(loop.time() + self._seconds, self._expire)
        return self

    def _expire(self) -> None:
        self._expired = True
        self._task.cancel()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._handle.cancel()
        if not self._expired:
            return
        # Withdraw our cancellation; if it is what ended the body, and nobody else cancelled
        # the task meanwhile (theirs leaves the count above ours), report the timeout instead.
        if self._task.uncancel() <= self._cancelling and exc_type is asyncio.CancelledError:
            raise TimeoutError from exc
