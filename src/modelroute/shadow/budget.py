"""A route's daily shadow budget: reserve before sending, settle after, release on failure.

A shadow is sent only when the day's settled spend, plus what shadows still out have
reserved, plus its own reservation, stays within the limit. The reservation is the planner's
cost estimate (prompt tokens and the output estimate at the model's prices); the actual cost
replaces it when the answer is back. The day turns over at UTC midnight of the injected wall
clock (seconds since the epoch): the new day starts with nothing spent, and a reservation made
the day before is settled against the day it was made on, not against the new one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True, slots=True)
class Reservation:
    day: int  # days since the epoch (UTC) when it was made
    usd: float


class DailyBudget:
    """One route's shadow spending for the current UTC day (one process's share of it)."""

    def __init__(self, limit_usd: float, wall_clock: Callable[[], float]) -> None:
        self.limit_usd = limit_usd
        self._clock = wall_clock
        self._day = self._today()
        self.spent_usd = 0.0  # settled today
        self.reserved_usd = 0.0  # held by shadows still out, reserved today

    def _today(self) -> int:
        return int(self._clock() // SECONDS_PER_DAY)

    def _turn_over(self) -> int:
        today = self._today()
        if today != self._day:
            self._day, self.spent_usd, self.reserved_usd = today, 0.0, 0.0
        return today

    def reserve(self, usd: float) -> Reservation | None:
        """Hold ``usd`` of today's budget, or ``None`` when it does not fit."""
        today = self._turn_over()
        if self.spent_usd + self.reserved_usd + usd > self.limit_usd:
            return None
        self.reserved_usd += usd
        return Reservation(today, usd)

    def settle(self, reservation: Reservation, actual_usd: float) -> None:
        """Replace the reservation with what was actually spent."""
        if self._turn_over() != reservation.day:
            return  # yesterday's spending: today's budget starts from nothing
        self.reserved_usd = max(self.reserved_usd - reservation.usd, 0.0)
        self.spent_usd += actual_usd

    def release(self, reservation: Reservation) -> None:
        """Give a reservation back unspent (the shadow was never sent)."""
        self.settle(reservation, 0.0)
