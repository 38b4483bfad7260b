"""An asyncio event loop on virtual time, for fast, exact, repeatable engine tests.

When nothing is ready to run, the clock jumps to the next timer instead of waiting for it.
Sleeps, ``asyncio.wait`` timeouts, the engine's deadlines (``engine/deadline.py``), the
relay's silence limit (``engine/idle.py``) and backoff all schedule timers on the loop, and a
router given ``clock=loop.time`` times its records on the same clock: a test that waits out a
30 s cool-down takes microseconds, and every timing it asserts is exact.

Only the loop's own timers are virtual. Code that waits on a thread or a real socket still
works (the loop polls them) but its waits take no virtual time; a test that waits on nothing
at all (no timer, no ready task) raises ``VirtualDeadlock`` instead of hanging.

``run_virtual(coro)`` runs one coroutine on a fresh loop; under pytest-asyncio,
``pytest_asyncio_loop_factories`` can hand out ``VirtualTimeLoop`` (see tests/engine/).
"""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class VirtualDeadlock(RuntimeError):
    """Every task waits, and on nothing the loop can ever deliver."""


class _Selector(selectors.DefaultSelector):
    """Polls the real file descriptors (the loop's self-pipe) without blocking; when none is
    ready, the time the loop would have slept passes on the virtual clock instead."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if events or timeout == 0:
            return events
        if timeout is None:
            raise VirtualDeadlock("every task waits, and no timer is scheduled")
        self._loop.advance_to_next_timer()
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self._now = 0.0
        super().__init__(_Selector(self))

    def time(self) -> float:
        return self._now

    def advance_to_next_timer(self) -> None:
        """Jump to the earliest scheduled timer exactly (not by the rounded delay the loop
        computed), so times add up as written: 0.25 s after 1.0 s is 1.25 s."""
        # The loop's heap of timers; it has just dropped cancelled ones from its head.
        scheduled: list[asyncio.TimerHandle] = self._scheduled  # type: ignore[attr-defined]
        if scheduled:
            self._now = max(self._now, scheduled[0].when())


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh virtual-time loop."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
