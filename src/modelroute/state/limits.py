"""Rate limits and budgets: the ``Counters`` port and its in-process implementation.

Both are counted where every replica sees the same numbers (``state/redis_state.py`` for
several processes), and both are all-or-nothing over the checks of one request: a request
that one limit refuses is counted against none.

Rate limits count requests and tokens in a sliding minute, kept as one-second slices: the
last 60 slices are summed at each check, so a limit of 100 a minute admits 100 in any minute
(never twice that across a minute boundary, as fixed windows do). Tokens are charged at
admission with the request's estimate (prompt + expected output) and corrected with the
actual usage when the request ends.

Budgets count USD per period (a UTC day or month). A request reserves its estimated cost
before its first call; it is admitted only if the spend so far plus every live reservation
plus its own stays within the budget. When it ends (answered, failed, cancelled, a stream
finished or broken) the reservation is replaced by the actual cost. A reservation nobody
settles (its replica died) lapses after ``hold_s``: its budget is free again, and its spend,
if any, is not counted.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple, Protocol

WINDOW_S = 60  # the sliding minute, in one-second slices


class RateCheck(NamedTuple):
    key: str  # the counter's name (scope, route, caller)
    requests: int | None  # per minute; None: not limited
    tokens: int | None


class RateVerdict(NamedTuple):
    admitted: bool
    refused: int = -1  # the index of the check that refused
    retry_after_s: float = 0.0  # until the oldest counted request leaves the minute


class BudgetCheck(NamedTuple):
    key: str  # the budget's name, its period included
    usd: float  # the budget
    expires_at: float  # epoch seconds after which its counter may be dropped


class BudgetVerdict(NamedTuple):
    admitted: bool
    refused: int = -1
    left_usd: tuple[float, ...] = ()  # each budget's remainder before this reservation


class AdmitVerdict(NamedTuple):
    """Budgets and rate limits checked together: ``budget`` refused (``BudgetVerdict``), or
    ``rate`` refused (``RateVerdict``), or neither (admitted: reserved and taken)."""

    budget: BudgetVerdict
    rate: RateVerdict

    @property
    def admitted(self) -> bool:
        return self.budget.admitted and self.rate.admitted


class Counters(Protocol):
    """Where limits and budgets are counted: in process, or shared (Redis)."""

    async def rate(self, checks: Sequence[RateCheck], tokens: int) -> RateVerdict: ...

    async def add_tokens(self, keys: Sequence[str], tokens: int) -> None:
        """Correct the current slice by ``tokens`` (negative: fewer were used)."""
        ...

    async def reserve(
        self, checks: Sequence[BudgetCheck], request_id: str, usd: float, hold_s: float
    ) -> BudgetVerdict: ...

    async def settle(self, keys: Sequence[str], request_id: str, usd: float) -> None:
        """Replace the request's reservation by its actual cost ``usd``."""
        ...

    async def finish(
        self, budget_keys: Sequence[str], request_id: str, usd: float,
        rate_keys: Sequence[str], tokens: int,
    ) -> None:  # fmt: skip
        """``settle`` and ``add_tokens`` at once (with Redis: one script)."""
        ...

    async def admit(
        self,
        budgets: Sequence[BudgetCheck],
        request_id: str,
        usd: float,
        hold_s: float,
        rates: Sequence[RateCheck],
        tokens: int,
    ) -> AdmitVerdict:
        """``reserve`` and ``rate`` at once, all or nothing: a request one of them refuses
        is counted in neither (with Redis: one script, one round trip)."""
        ...

    async def spent(self, key: str) -> float: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True)
class _Budget:
    spent: float = 0.0
    held: dict[str, tuple[float, float]] = field(default_factory=dict)  # id -> (usd, until)
    expires_at: float = float("inf")


def budget_left(limit: float, spent: float, held: float) -> float:
    return limit - spent - held


def refuses(usd: float, left: float) -> bool:
    """A spent budget admits nothing, not even a request estimated at nothing."""
    return left <= 0 or usd > left


class MemoryCounters:
    """Counters of one process: exact, and shared by nothing else (``--workers 1``)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock  # epoch seconds
        self._slices: dict[str, dict[int, list[int]]] = {}  # key -> second -> [reqs, tokens]
        self._budgets: dict[str, _Budget] = {}

    def _window(self, key: str, now: float) -> dict[int, list[int]]:
        slices = self._slices.setdefault(key, {})
        oldest = int(now) - WINDOW_S + 1
        for second in [s for s in slices if s < oldest]:
            del slices[second]
        return slices

    async def rate(self, checks: Sequence[RateCheck], tokens: int) -> RateVerdict:
        now = self._clock()
        windows = []
        for i, check in enumerate(checks):
            slices = self._window(check.key, now)
            requests = sum(v[0] for v in slices.values())
            used = sum(v[1] for v in slices.values())
            over_requests = check.requests is not None and requests + 1 > check.requests
            over_tokens = check.tokens is not None and used + tokens > check.tokens
            if over_requests or over_tokens:
                first = min(slices, default=int(now))
                return RateVerdict(False, i, max(0.0, WINDOW_S - (now - first)))
            windows.append(slices)
        second = int(now)
        for slices in windows:
            counts = slices.setdefault(second, [0, 0])
            counts[0] += 1
            counts[1] += tokens
        return RateVerdict(True)

    async def add_tokens(self, keys: Sequence[str], tokens: int) -> None:
        now = self._clock()
        for key in keys:
            self._window(key, now).setdefault(int(now), [0, 0])[1] += tokens

    def _budget(self, check: BudgetCheck, now: float) -> _Budget:
        budget = self._budgets.get(check.key)
        if budget is None or budget.expires_at <= now:
            budget = self._budgets[check.key] = _Budget(expires_at=check.expires_at)
        for rid in [r for r, (_, until) in budget.held.items() if until <= now]:
            del budget.held[rid]  # lapsed: its replica never settled it
        return budget

    async def reserve(
        self, checks: Sequence[BudgetCheck], request_id: str, usd: float, hold_s: float
    ) -> BudgetVerdict:
        now = self._clock()
        budgets = [self._budget(c, now) for c in checks]
        lefts = tuple(
            budget_left(c.usd, b.spent, sum(a for a, _ in b.held.values()))
            for c, b in zip(checks, budgets, strict=True)
        )
        for i, left in enumerate(lefts):
            if refuses(usd, left):
                return BudgetVerdict(False, i, lefts)
        for budget in budgets:
            budget.held[request_id] = (usd, now + hold_s)
        return BudgetVerdict(True, -1, lefts)

    async def settle(self, keys: Sequence[str], request_id: str, usd: float) -> None:
        for key in keys:
            budget = self._budgets.setdefault(key, _Budget())
            budget.held.pop(request_id, None)
            budget.spent += usd

    async def admit(
        self,
        budgets: Sequence[BudgetCheck],
        request_id: str,
        usd: float,
        hold_s: float,
        rates: Sequence[RateCheck],
        tokens: int,
    ) -> AdmitVerdict:
        budget = BudgetVerdict(True)
        if budgets:
            budget = await self.reserve(budgets, request_id, usd, hold_s)
            if not budget.admitted:
                return AdmitVerdict(budget, RateVerdict(True))
        rate = await self.rate(rates, tokens) if rates else RateVerdict(True)
        if not rate.admitted:  # one process, no await in between: undo the reservation
            for check in budgets:
                self._budgets[check.key].held.pop(request_id, None)
        return AdmitVerdict(budget, rate)

    async def finish(
        self, budget_keys: Sequence[str], request_id: str, usd: float,
        rate_keys: Sequence[str], tokens: int,
    ) -> None:  # fmt: skip
        if budget_keys:
            await self.settle(budget_keys, request_id, usd)
        if rate_keys and tokens:
            await self.add_tokens(rate_keys, tokens)

    async def spent(self, key: str) -> float:
        budget = self._budgets.get(key)
        return 0.0 if budget is None else budget.spent

    async def aclose(self) -> None:
        return None
