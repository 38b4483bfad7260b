"""The dashboard's query parameters: time ranges, bucket sizes, explorer filters.

A bad value is a ``BadQuery`` whose message the page shows (status 400); nothing is guessed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

# The ranges a page offers: name → (seconds, bucket seconds). Buckets stay near 60-170 per
# chart: enough to see a change, few enough to read.
RANGES: dict[str, tuple[int, int]] = {
    "1h": (3_600, 60),
    "6h": (21_600, 300),
    "24h": (86_400, 900),
    "7d": (604_800, 3_600),
    "30d": (2_592_000, 21_600),
}
DEFAULT_RANGE = "24h"
PAGE_SIZES = (25, 50, 100, 200)


class BadQuery(ValueError):
    """A query parameter the page cannot use; the message names it and what it accepts."""


@dataclass(frozen=True, slots=True)
class Window:
    name: str
    since: float
    until: float
    step: int


def window(query: dict[str, str], now: float) -> Window:
    """The range asked for (``range=24h``), ending at the end of the bucket holding ``now``
    so that every bucket is whole and the latest holds the latest requests."""
    name = query.get("range") or DEFAULT_RANGE
    if name not in RANGES:
        raise BadQuery(f"range={name!r} is not one of {', '.join(RANGES)}")
    span, step = RANGES[name]
    until = float(math.floor(now / step) * step + step)
    return Window(name, until - span, until, step)


def moment(name: str, text: str | None) -> float | None:
    """A time from a form: Unix seconds, or an ISO date-time (``2026-12-06T09:15``, UTC when
    it carries no offset, as a ``datetime-local`` input sends it)."""
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise BadQuery(
            f"{name}={text!r} is not a time: give 2026-12-06T09:15 (UTC) or Unix seconds"
        ) from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def as_input(value: float | None) -> str:
    """A time as a ``datetime-local`` input shows it (UTC, to the second)."""
    if value is None:
        return ""
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%S")


def page_size(query: dict[str, str]) -> int:
    text = query.get("limit") or "50"
    if not text.isdigit() or int(text) not in PAGE_SIZES:
        raise BadQuery(f"limit={text!r} is not one of {', '.join(map(str, PAGE_SIZES))}")
    return int(text)


@dataclass(frozen=True, slots=True)
class Filters:
    """The decision explorer's search, as the form sent it (empty fields dropped)."""

    route: str | None = None
    model: str | None = None
    status: str | None = None
    request_id: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int = 50
    before: str | None = None

    @classmethod
    def parse(cls, query: dict[str, str]) -> Filters:
        def text(key: str) -> str | None:
            value = (query.get(key) or "").strip()
            return value or None

        return cls(
            route=text("route"),
            model=text("model"),
            status=text("status"),
            request_id=text("request_id"),
            since=moment("since", text("since")),
            until=moment("until", text("until")),
            limit=page_size(query),
            before=text("before"),
        )

    def params(self, **changes: str | None) -> dict[str, str]:
        """The query string's parameters for a link with ``changes`` (a next page)."""
        values: dict[str, str | None] = {
            "route": self.route,
            "model": self.model,
            "status": self.status,
            "request_id": self.request_id,
            "since": as_input(self.since) or None,
            "until": as_input(self.until) or None,
            "limit": str(self.limit) if self.limit != 50 else None,
            "before": self.before,
        }
        values.update(changes)
        return {k: v for k, v in values.items() if v}
