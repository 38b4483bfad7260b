"""A silence limit for a relayed stream, paid for once per silence rather than once per event.

Entering ``asyncio.timeout`` around every awaited event schedules and cancels a timer per
event, a visible share of a relay's cost. Here one timer watches a timestamp that each event
moves forward; it re-arms itself while events keep coming and cancels the task only when the
upstream has been silent for the whole limit while the relay was waiting on it (time spent
waiting on a slow client does not count).
"""

from __future__ import annotations

import asyncio


class IdleLimit:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None, "IdleLimit must be created inside a task"
        self._task = task
        self._cancelling = task.cancelling()
        self.waiting = False
        self.expired = False
        self._last = self._loop.time()
        self._handle = self._loop.call_at(self._last + seconds, self._check)

    def wait_start(self) -> None:
        self._last = self._loop.time()
        self.waiting = True

    def wait_end(self) -> None:
        self.waiting = False

    def _check(self) -> None:
        now = self._loop.time()
        due = self._last + self.seconds
        if not self.waiting or now < due:
            self._handle = self._loop.call_at(max(due, now + self.seconds / 4), self._check)
            return
        self.expired = True
        self._task.cancel()

    def absorb(self) -> bool:
        """In a ``CancelledError`` handler: True when the cancellation was this limit's own
        (and it is withdrawn, so the caller can report a timeout); False to re-raise."""
        return self.expired and self._task.uncancel() <= self._cancelling

    def stop(self) -> None:
        self._handle.cancel()
