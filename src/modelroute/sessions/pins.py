"""Where sessions' pins live: the ``PinStore`` port, and its in-process implementation.

A pin is (route, session key) -> model name. Each lapses ``ttl_s`` seconds after it was last
read or written (a conversation that goes on keeps its pin), and a route keeps at most
``max_sessions`` of them: past that, the least recently used goes. The Redis store
(``redis_pins.py``) does the same for every replica and worker at once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Protocol


class PinStore(Protocol):
    async def get(self, route: str, session: str, ttl_s: float, max_sessions: int) -> str | None:
        """The session's pinned model (its lapse time pushed back), or None."""
        ...

    async def put(
        self, route: str, session: str, model: str, ttl_s: float, max_sessions: int
    ) -> None:
        """Pin the session to ``model``, dropping the route's least recently used pins past
        ``max_sessions``."""
        ...

    async def aclose(self) -> None: ...


class MemoryPins:
    """Pins in this process (``serve --state memory``), read on ``clock`` (monotonic seconds;
    tests pass a fake one)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        # route -> session -> (model, lapses at); ordered oldest use first
        self._routes: dict[str, OrderedDict[str, tuple[str, float]]] = {}

    def __len__(self) -> int:
        return sum(len(pins) for pins in self._routes.values())

    async def get(self, route: str, session: str, ttl_s: float, max_sessions: int) -> str | None:
        pins = self._routes.get(route)
        if pins is None:
            return None
        found = pins.get(session)
        if found is None:
            return None
        now = self._clock()
        if found[1] <= now:
            del pins[session]
            return None
        pins[session] = (found[0], now + ttl_s)
        pins.move_to_end(session)
        return found[0]

    async def put(
        self, route: str, session: str, model: str, ttl_s: float, max_sessions: int
    ) -> None:
        pins = self._routes.setdefault(route, OrderedDict())
        now = self._clock()
        pins[session] = (model, now + ttl_s)
        pins.move_to_end(session)
        while len(pins) > max_sessions:
            pins.popitem(last=False)
        # lapsed pins at the old end go too, a few per write (the bound holds regardless)
        for _ in range(2):
            oldest = next(iter(pins.items()), None)
            if oldest is None or oldest[1][1] > now:
                break
            del pins[oldest[0]]

    async def aclose(self) -> None:
        return None
