"""What is stored of an API key, and how a key is made.

A key is 32 random bytes (``secrets.token_urlsafe``) behind the prefix ``mr-``. Only its
SHA-256 is stored: with 256 bits of entropy no dictionary or brute-force attack on the hash
is possible, so a slow password hash (bcrypt, argon2) would buy nothing and cost milliseconds
of CPU on every request. The key's public id (``key_id``, the first 16 hex digits of the same
hash, as records' ``client_key_id``) is what lists, logs and records show.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from modelroute.identity import NO_LIMITS, Budget, BudgetPeriod, ClientIdentity, RateLimits

PREFIX = "mr-"


def new_secret() -> str:
    return PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    """The stored form of a key (its full SHA-256, hex)."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class KeySpec:
    """What a new key may do (``modelroute keys create`` and ``POST /admin/keys``)."""

    name: str
    team: str | None = None
    routes: frozenset[str] | None = None
    budget: Budget | None = None
    limits: RateLimits = NO_LIMITS

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ValueError("a key needs a name")
        if self.routes is not None and not self.routes:
            raise ValueError("allowed routes, when given, must name at least one route")

    @classmethod
    def from_json(cls, data: Any) -> KeySpec:
        """From the admin API's body: ``{"name", "team", "routes", "budget_usd",
        "budget_period", "requests_per_minute", "tokens_per_minute"}``; raises ``ValueError``
        naming the field that is wrong."""
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        known = set(KEY_FIELDS)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown field(s): {', '.join(unknown)}")
        name, team, routes = data.get("name"), data.get("team"), data.get("routes")
        if not isinstance(name, str):
            raise ValueError("'name' is required (a string)")
        if team is not None and not isinstance(team, str):
            raise ValueError("'team' must be a string")
        if routes is not None and (
            not isinstance(routes, list) or not all(isinstance(r, str) for r in routes)
        ):
            raise ValueError("'routes' must be a list of route names")
        budget = None
        if data.get("budget_usd") is not None:
            usd = data["budget_usd"]
            if isinstance(usd, bool) or not isinstance(usd, int | float):
                raise ValueError("'budget_usd' must be a number")
            budget = Budget(float(usd), data.get("budget_period") or "monthly")
        limits = RateLimits(_int(data, "requests_per_minute"), _int(data, "tokens_per_minute"))
        return cls(name, team, None if routes is None else frozenset(routes), budget, limits)


KEY_FIELDS = (
    "name", "team", "routes", "budget_usd", "budget_period", "requests_per_minute",
    "tokens_per_minute",
)  # fmt: skip


def _int(data: dict[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ValueError(f"'{name}' must be an integer")
    return value


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One stored key: its hash, public id, what it may do, and when it was made/revoked."""

    key_hash: str
    spec: KeySpec
    created_at: float
    revoked_at: float | None = None

    @property
    def key_id(self) -> str:
        return self.key_hash[:16]

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def identity(self) -> ClientIdentity:
        s = self.spec
        return ClientIdentity(self.key_id, s.name, s.team, s.routes, s.budget, s.limits)

    def to_dict(self) -> dict[str, Any]:
        """The public view (lists, the admin API): never the hash, never the key."""
        s = self.spec
        return {
            "key_id": self.key_id,
            "name": s.name,
            "team": s.team,
            "routes": None if s.routes is None else sorted(s.routes),
            "budget_usd": None if s.budget is None else s.budget.usd,
            "budget_period": None if s.budget is None else s.budget.period,
            "requests_per_minute": s.limits.requests_per_minute,
            "tokens_per_minute": s.limits.tokens_per_minute,
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def budget_period(text: str | None) -> BudgetPeriod:
    if text not in ("daily", "monthly"):
        raise ValueError(f"a budget period is daily or monthly, got {text!r}")
    return text  # type: ignore[return-value]
