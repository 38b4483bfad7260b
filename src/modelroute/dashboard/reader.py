"""``Dashboard``: every page's data from one store, in a few indexed queries each.

Charts and per-route figures read the rollups (per-minute and per-hour aggregates the records
writer maintains with each batch), never the raw rows; the explorer reads rows by index, a
page at a time; the audit and drift pages read stored snapshots. Bad arguments raise
``ValueError`` with a message fit to show the caller.
"""

from __future__ import annotations

from modelroute.dashboard.views import (
    Overview,
    PolicyText,
    PolicyVersion,
    RequestDetail,
    Routes,
    SearchPage,
    Snapshot,
)
from modelroute.policy import Policy
from modelroute.records.stores.base import Store

MAX_LIMIT = 500


class Dashboard:
    """Reads one open store. ``policy``: the policy in force, for the route views and to mark
    the version in force; without one, routes show what the records say only."""

    def __init__(self, store: Store, policy: Policy | None = None) -> None:
        self.store = store
        self.policy = policy

    async def overview(self, since: float, until: float, step: int = 60) -> Overview:
        """Volume, spend, p50/p95 latency, error and fallback rates per ``step`` seconds
        (60 or a multiple of it) over [since, until): in total, by route, by final model."""
        raise NotImplementedError

    async def routes(self, since: float, until: float) -> Routes:
        """Per route over [since, until): the policy's view of it, the model mix, measured
        quality per model (outcomes of all time), cost per request, rejection counts."""
        raise NotImplementedError

    async def search(
        self,
        *,
        route: str | None = None,
        model: str | None = None,
        status: str | None = None,
        request_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> SearchPage:
        """Requests newest first, narrowed by each argument given; ``before`` is a previous
        page's ``next_before``. ``limit`` is 1 to ``MAX_LIMIT``."""
        raise NotImplementedError

    async def request(self, request_id: str) -> RequestDetail | None:
        """One request in full, with its feedback and outcomes; None when not stored."""
        raise NotImplementedError

    async def policies(self) -> tuple[PolicyVersion, ...]:
        """Policy versions seen in the records or stored, newest last seen first."""
        raise NotImplementedError

    async def policy_text(self, policy_hash: str) -> PolicyText | None:
        """A stored policy's text, for a diff; None when it was never stored."""
        raise NotImplementedError

    async def audit_latest(self) -> Snapshot | None:
        """The latest stored audit (``snapshots.refresh`` computes them); None before one."""
        raise NotImplementedError

    async def drift_latest(self) -> Snapshot | None:
        """The latest stored drift check; None before one."""
        raise NotImplementedError
