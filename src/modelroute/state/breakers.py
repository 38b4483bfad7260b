"""Circuit breakers, one per model, in process.

Each call's outcome is counted in a sliding window of the last ``window_s`` seconds: a success,
an unhealthy failure (``failures.UNHEALTHY``: timeouts, connection errors, 5xx, invalid
answers), or a rate limit (``rate_limited``). Other failures (a bad request, an empty answer
a client can cause at will, a lost hedge) say nothing about the model and are not counted.

A closed breaker opens when
- the window holds at least ``min_calls`` calls and unhealthy failures are at least
  ``error_rate`` of them: it stays open for ``cooldown_s``;
- or, the same for rate limits: it stays open for the provider's latest ``Retry-After``
  (``cooldown_s`` if none was given), a cool-down the provider asked for, not ill health;
- or ``consecutive_failures`` unhealthy failures (or as many rate limits) came in a row with
  no success between: a model that is down is caught before there is traffic enough to judge
  a rate.
A model failing a share of its calls below ``error_rate`` is degraded, not down, and keeps
its traffic: retries and fallbacks hide its failures better than its absence would.

When the time is up the breaker is half-open: it lets exactly one probe through; a success
closes it (with a fresh window), a failure re-opens it. Outcomes of calls that were already
out when it opened are ignored: under load some always come back late.

The planner sees open breakers as ``circuit_open`` through ``open_models()``; a route never
loses more than its share of candidates to them (``Route.max_ejection_percent``,
planner/plan.py): the least-bad open ones stay in the order, tried last, through
``allow(model, probe=True)``, which lets one probe through even before the cool-down ends.

The clock is injected, so tests drive time without sleeping.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from modelroute.failures import UNHEALTHY, FailureClass
from modelroute.policy.compiled import BreakerPolicy

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
ILL_HEALTH, RATE_LIMITS = "ill health", "rate limits"
_BUCKETS = 10  # the window is counted in this many slices of time


@dataclass(slots=True)
class _Bucket:
    start: float
    calls: int = 0
    unhealthy: int = 0
    limited: int = 0


@dataclass(slots=True)
class _Breaker:
    settings: BreakerPolicy
    state: str = CLOSED
    cause: str = ILL_HEALTH  # why it is (or last was) open
    buckets: deque[_Bucket] = field(default_factory=deque)
    calls: int = 0  # totals over ``buckets``
    unhealthy: int = 0
    limited: int = 0
    unhealthy_run: int = 0  # in a row, with no success between
    limited_run: int = 0
    open_until: float = 0.0
    probing: bool = False
    trips: int = 0
    # Until then the newest slice takes new calls and none has left the window: the common
    # case (a success) is then two additions.
    steady_until: float = float("-inf")

    def count(self, now: float, unhealthy: int, limited: int) -> None:
        """One call into the window, after dropping the slices that fell out of it."""
        if now >= self.steady_until:
            self._slide(now)
        last = self.buckets[-1]
        last.calls += 1
        self.calls += 1
        if unhealthy or limited:
            last.unhealthy += unhealthy
            last.limited += limited
            self.unhealthy += unhealthy
            self.limited += limited

    def _slide(self, now: float) -> None:
        window = self.settings.window_s
        buckets = self.buckets
        while buckets and buckets[0].start <= now - window:
            old = buckets.popleft()
            self.calls -= old.calls
            self.unhealthy -= old.unhealthy
            self.limited -= old.limited
        if not buckets or now >= buckets[-1].start + window / _BUCKETS:
            buckets.append(_Bucket(now))
        self.steady_until = min(buckets[0].start + window, buckets[-1].start + window / _BUCKETS)

    def forget(self) -> None:
        """A fresh start: the window and the runs describe the model before it was open."""
        self.buckets.clear()
        self.steady_until = float("-inf")
        self.calls = self.unhealthy = self.limited = 0
        self.unhealthy_run = self.limited_run = 0

    def over(self, failures: int, run: int) -> bool:
        s = self.settings
        if run >= s.consecutive_failures:
            return True
        return self.calls >= s.min_calls and failures >= s.error_rate * self.calls


class Breakers:
    def __init__(
        self,
        settings: Mapping[str, BreakerPolicy] | None = None,
        clock: Callable[[], float] | None = None,
        default: BreakerPolicy | None = None,
    ) -> None:
        self._settings = dict(settings or {})
        self._default = default or BreakerPolicy()
        self._clock = clock or time.monotonic
        self._breakers: dict[str, _Breaker] = {}
        self._open: frozenset[str] = frozenset()
        self._earliest_reopen = float("inf")

    def configure(self, settings: Mapping[str, BreakerPolicy]) -> None:
        """Take a reloaded policy's settings: models it adds get breakers with theirs, the
        breakers of models it keeps judge by their new settings from the next call on (their
        state, window and runs kept); models it drops keep theirs (requests planned on the
        old policy may still call them)."""
        self._settings.update(settings)
        for name, policy in settings.items():
            breaker = self._breakers.get(name)
            if breaker is not None and breaker.settings != policy:
                breaker.settings = policy
                breaker.steady_until = float("-inf")  # the window's length may have changed

    def _get(self, model: str) -> _Breaker:
        breaker = self._breakers.get(model)
        if breaker is None:
            breaker = _Breaker(self._settings.get(model, self._default))
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

    def allow(self, model: str, *, probe: bool = False, waited: bool = False) -> bool:
        """May a call to ``model`` go out now? Claims the half-open probe if it is free.

        ``probe``: the planner kept this open model as a route's last resort; its probe may go
        before the cool-down ends. ``waited``: a retry that has waited out the provider's
        ``Retry-After``; a cool-down for rate limits does not hold it back (ill health does)."""
        b = self._breakers.get(model)
        if b is None or b.state == CLOSED:
            return True
        if waited and b.cause == RATE_LIMITS:
            return True
        if b.state == OPEN:
            if self._clock() < b.open_until and not probe:
                return False
            b.state, b.probing = HALF_OPEN, False
        if b.probing:
            return False
        b.probing = True
        self._refresh()
        return True

    def why_not(self, model: str) -> str:
        """Why ``allow`` refused ``model``, for the record."""
        b = self._breakers.get(model)
        if b is not None and b.state == HALF_OPEN and b.probing:
            return f"circuit open ({b.cause}): its one probe is already out"
        cause = b.cause if b is not None else ILL_HEALTH
        return f"circuit open ({cause})"

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
        b = self._breakers.get(model) or self._get(model)
        if b.state == CLOSED:  # the common case first
            b.unhealthy_run = b.limited_run = 0
            b.count(self._clock(), 0, 0)
            return
        if b.state == OPEN:
            # A call that went out before it opened (or a retry let through a rate-limit
            # cool-down): under load some always answer late, and closing on them would undo
            # every trip. Only the probe decides.
            return
        if b.state != CLOSED:
            b.state, b.probing = CLOSED, False
            b.forget()
            self._refresh()
        b.unhealthy_run = b.limited_run = 0
        b.count(self._clock(), 0, 0)

    def failure(
        self, model: str, cls: FailureClass | None = None, retry_after_s: float | None = None
    ) -> None:
        """A failed call, by its class (``None``: it ended without a verdict, e.g. a lost
        hedge race)."""
        b = self._get(model)
        if b.state == OPEN:
            return  # a call that went out before it opened: the model is judged already
        if cls in UNHEALTHY:
            b.unhealthy_run += 1
            b.count(self._clock(), 1, 0)
            if b.state == HALF_OPEN or b.over(b.unhealthy, b.unhealthy_run):
                self._trip(b, ILL_HEALTH, b.settings.cooldown_s)
        elif cls is FailureClass.RATE_LIMITED:
            b.limited_run += 1
            b.count(self._clock(), 0, 1)
            if b.state == HALF_OPEN or b.over(b.limited, b.limited_run):
                wait = retry_after_s if retry_after_s is not None else b.settings.cooldown_s
                self._trip(b, RATE_LIMITS, wait)
        elif b.state == HALF_OPEN and b.probing:
            b.probing = False  # the probe ended without a verdict: the next call may probe
            self._refresh()

    def _trip(self, b: _Breaker, cause: str, seconds: float) -> None:
        b.state, b.cause = OPEN, cause
        b.open_until = max(b.open_until, self._clock() + seconds)
        b.probing = False
        b.trips += 1
        b.forget()
        self._refresh()

    def snapshot(self) -> dict[str, str]:
        return {name: self.state(name) for name in self._breakers}

    # -- what a shared view (state/shared_circuits.py) reads and imposes -----------------

    def trips(self, model: str) -> int:
        """How often the model's breaker has opened here."""
        b = self._breakers.get(model)
        return 0 if b is None else b.trips

    def open_for(self, model: str) -> tuple[str, float] | None:
        """Why and for how many more seconds the breaker is open, if it is."""
        b = self._breakers.get(model)
        if b is None or b.state != OPEN:
            return None
        return b.cause, max(0.0, b.open_until - self._clock())

    def impose_open(self, model: str, cause: str, seconds: float) -> None:
        """Another replica opened the model's breaker: open it here for as long."""
        b = self._get(model)
        until = self._clock() + seconds
        if b.state == OPEN and b.open_until >= until:
            return
        b.state, b.cause, b.open_until, b.probing = OPEN, cause, until, False
        b.forget()
        self._refresh()

    def impose_closed(self, model: str) -> None:
        """Another replica's probe succeeded: close the breaker here too (unless this
        replica's own probe is out: its outcome decides)."""
        b = self._breakers.get(model)
        if b is None or b.state == CLOSED or b.probing:
            return
        b.state = CLOSED
        b.forget()
        self._refresh()
