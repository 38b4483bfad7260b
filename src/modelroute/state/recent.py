"""The requests this process served lately, for feedback that names one by id.

Two generations of plain dicts rather than one ordered map: adding is a dict store, and
forgetting is dropping the older generation whole, so no per-entry bookkeeping is paid on
the request path. An entry stays until ``limit // 2`` newer ones have come, or, with
``max_age_s``, for at least that long and at most twice that long, whichever ends first.

With a record store the map only bridges the moment between a request's answer and its
record reaching the store (``router/feedback.py`` asks the store for anything older), so the
router bounds it by age; without one it is the only memory of who was served, bounded by
count alone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")

# How long a served request is remembered when records go to a store: far longer than a
# healthy writer takes to store a record (a flush every 50 ms, a write timeout of 2 s).
KEPT_WITH_STORE_S = 10.0


@dataclass(slots=True)
class RecentRequests(Generic[T]):
    limit: int = 50_000
    max_age_s: float | None = None
    clock: Callable[[], float] = time.monotonic
    _young: dict[str, T] = field(default_factory=dict)
    _old: dict[str, T] = field(default_factory=dict)
    _young_since: float | None = None  # when the young generation took its first entry

    def add(self, request_id: str, value: T) -> None:
        young = self._young
        if self.max_age_s is not None:
            now = self.clock()
            if self._young_since is None:
                self._young_since = now
            elif now - self._young_since >= self.max_age_s:
                self._rotate(now)
                young = self._young
        young[request_id] = value
        if len(young) >= max(1, self.limit // 2):
            self._rotate(None)

    def _rotate(self, now: float | None) -> None:
        self._old, self._young, self._young_since = self._young, {}, now

    def get(self, request_id: str) -> T | None:
        found = self._young.get(request_id)
        return self._old.get(request_id) if found is None else found

    def __len__(self) -> int:
        return len(self._young) + len(self._old)
