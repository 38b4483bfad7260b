"""An asyncio event loop on virtual time: when nothing is ready to run, the clock jumps to
the next timer instead of waiting for it. Sleeps, deadlines and the engine's clock all read
``loop.time()``, so a test drives thousands of requests through simulated seconds in a
moment, the same way on every run."""

from __future__ import annotations

import asyncio
import selectors
from collections.abc import Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


class _Selector(selectors.DefaultSelector):
    """Polls the real file descriptors (the loop's self-pipe) without blocking, and lets the
    time the loop would have waited pass on the virtual clock."""

    def __init__(self, loop: VirtualTimeLoop) -> None:
        super().__init__()
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        events = super().select(0)
        if not events and timeout:
            self._loop.now += timeout
        elif not events and timeout is None:
            raise RuntimeError("deadlock: nothing scheduled and nothing to wait for")
        return events


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        self.now = 0.0
        super().__init__(_Selector(self))

    def time(self) -> float:
        return self.now


def run_virtual(main: Coroutine[Any, Any, T]) -> T:
    """Run ``main`` to completion on a fresh virtual-time loop."""
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
