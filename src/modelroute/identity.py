"""Who is calling: the identity an authenticated API key carries into a request.

The gateway authenticates the key a client presents (``Authorization: Bearer KEY`` or
``x-api-key``) against its key registry (``modelroute.keys``) and hands the router the
resulting ``ClientIdentity``::

    await router.chat(body, headers, identity=identity)
    await router.stream(body, headers, identity=identity)

A library caller may build one itself. Without an identity the router knows a caller only by
the hash of whatever key it presented (``client_key_id``), with no limits of its own.

Nothing here holds a secret: ``key_id`` is the same hash records carry in ``client_key_id``
(the first 16 hex digits of the key's SHA-256), safe to log, store and put in metrics.

Standard library only: the router, the state backends (limits, budgets) and the server all
read it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Literal

BudgetPeriod = Literal["daily", "monthly"]
BUDGET_PERIODS: tuple[BudgetPeriod, ...] = ("daily", "monthly")


def key_id_of(secret: str) -> str:
    """The public id of a key: what records, logs and metrics may show (never the key)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Budget:
    """Spend allowed per calendar period (UTC day or month), in US dollars."""

    usd: float
    period: BudgetPeriod = "monthly"

    def __post_init__(self) -> None:
        if not self.usd >= 0:  # also refuses NaN
            raise ValueError(f"a budget must be a non-negative amount, got {self.usd!r}")
        if self.period not in BUDGET_PERIODS:
            raise ValueError(f"a budget period is daily or monthly, got {self.period!r}")


@dataclass(frozen=True, slots=True)
class RateLimits:
    """Per-minute ceilings for one caller; ``None``: no ceiling of this kind."""

    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None

    def __post_init__(self) -> None:
        for name in ("requests_per_minute", "tokens_per_minute"):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be a positive integer or None, got {value!r}")

    @property
    def unlimited(self) -> bool:
        return self.requests_per_minute is None and self.tokens_per_minute is None


NO_LIMITS = RateLimits()


@dataclass(frozen=True, slots=True)
class ClientIdentity:
    """An authenticated caller.

    - ``key_id``: the key's public id (``key_id_of``), equal to records' ``client_key_id``;
    - ``name``: the key's human name (``modelroute keys create --name``);
    - ``team``: the team it spends for (budgets may be per team), or ``None``;
    - ``routes``: the routes it may use; ``None``: every route;
    - ``budget``: its own spend ceiling, or ``None``;
    - ``limits``: its own rate limits (``NO_LIMITS``: none).
    """

    key_id: str
    name: str
    team: str | None = None
    routes: frozenset[str] | None = None
    budget: Budget | None = None
    limits: RateLimits = NO_LIMITS

    def allows(self, route: str | None) -> bool:
        """May this caller use ``route``? (A request that selected no route is not refused
        here: it fails on its own.)"""
        return self.routes is None or route is None or route in self.routes

    @classmethod
    def anonymous(cls, secret: str) -> ClientIdentity:
        """A caller known only by the key it presented (no registry): no limits of its own."""
        return cls(key_id=key_id_of(secret), name="")
