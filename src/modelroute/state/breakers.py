"""Circuit breakers, one per model, in process.

A breaker opens after ``consecutive_failures`` unhealthy failures in a row, or when the error
rate over the last ``window`` calls reaches ``error_rate`` (with at least ``window // 2``
calls seen). It stays open for ``cooldown_s``, then lets exactly one probe through (half-open):
success closes it, failure re-opens it. A ``rate_limited`` failure with ``Retry-After`` cools
the model down for that long without counting as ill health. The planner sees open breakers as
``circuit_open`` through ``open_models()``.

The clock is injected, so tests drive time without sleeping.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


@dataclass(frozen=True, slots=True)
class BreakerSettings:
    consecutive_failures: int = 5
    error_rate: float = 0.5
    window: int = 20
    cooldown_s: float = 30.0


@dataclass(slots=True)
class _Breaker:
    state: str = CLOSED
    consecutive: int = 0
    recent: deque[bool] = field(default_factory=lambda: deque(maxlen=20))
    open_until: float = 0.0
    probing: bool = False
    trips: int = 0


class Breakers:
    def __init__(
        self, settings: BreakerSettings | None = None, clock: Callable[[], float] | None = None
    ) -> None:
        import time

        self.settings = settings or BreakerSettings()
        self._clock = clock or time.monotonic
        self._breakers: dict[str, _Breaker] = {}
        self._open: frozenset[str] = frozenset()
        self._earliest_reopen = float("inf")

    def _get(self, model: str) -> _Breaker:
        breaker = self._breakers.get(model)
        if breaker is None:
            breaker = _Breaker(recent=deque(maxlen=self.settings.window))
            self._breakers[model] = breaker
        return breaker

    def open_models(self) -> frozenset[str]:
        """Models the planner must not offer now. Cheap: recomputed only when state changes
        or a cooldown ends."""
        if self._clock() >= self._earliest_reopen:
            self._refresh()
        return self._open

    def _refresh(self) -> None:
        now = self._clock()
        open_now = set()
        earliest = float("inf")
        for name, b in self._breakers.items():
            if b.state == OPEN and now < b.open_until:
                open_now.add(name)
                earliest = min(earliest, b.open_until)
            elif b.state == HALF_OPEN and b.probing:
                open_now.add(name)  # one probe at a time
        self._open = frozenset(open_now)
        self._earliest_reopen = earliest

    def allow(self, model: str) -> bool:
        """May a call to ``model`` go out now? Claims the half-open probe if it is free."""
        b = self._breakers.get(model)
        if b is None or b.state == CLOSED:
            return True
        now = self._clock()
        if b.state == OPEN:
            if now < b.open_until:
                return False
            b.state, b.probing = HALF_OPEN, False
        if b.probing:
            return False
        b.probing = True
        self._refresh()
        return True

    def release(self, model: str) -> None:
        """A call ``allow`` let through did not go out after all: free the probe it claimed."""
        b = self._breakers.get(model)
        if b is not None and b.state == HALF_OPEN and b.probing:
            b.probing = False
            self._refresh()

    def state(self, model: str) -> str:
        b = self._breakers.get(model)
        if b is None:
            return CLOSED
        if b.state == OPEN and self._clock() >= b.open_until:
            return HALF_OPEN
        return b.state

    def success(self, model: str) -> None:
        b = self._get(model)
        b.consecutive = 0
        b.recent.append(True)
        if b.state != CLOSED:
            b.state, b.probing = CLOSED, False
            b.recent.clear()
            self._refresh()

    def failure(self, model: str, unhealthy: bool, retry_after_s: float | None = None) -> None:
        b = self._get(model)
        if not unhealthy:
            if retry_after_s:
                self._trip(b, retry_after_s)  # a cool-down the provider asked for
            elif b.state == HALF_OPEN:
                b.probing = False
                self._refresh()
            return
        b.consecutive += 1
        b.recent.append(False)
        s = self.settings
        failures = b.recent.count(False)
        rate_tripped = len(b.recent) >= max(1, s.window // 2) and failures / len(b.recent) >= (
            s.error_rate
        )
        if b.state == HALF_OPEN or b.consecutive >= s.consecutive_failures or rate_tripped:
            self._trip(b, s.cooldown_s)

    def _trip(self, b: _Breaker, seconds: float) -> None:
        b.state = OPEN
        b.open_until = max(b.open_until, self._clock() + seconds)
        b.probing = False
        b.consecutive = 0
        b.trips += 1
        self._refresh()

    def snapshot(self) -> dict[str, str]:
        return {name: self.state(name) for name in self._breakers}
