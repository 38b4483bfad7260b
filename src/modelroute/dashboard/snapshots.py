"""The audit and drift results the dashboard shows, computed in the background and stored.

The audit over a million records takes far longer than a page may, so pages only read the
latest stored snapshot (``analysis_snapshots``: kind, computed_at, JSON); ``refresh`` computes
and stores them, and ``SnapshotRefresher`` runs it every ``every_s`` seconds beside a gateway
or ``modelroute ui``.
"""

from __future__ import annotations

from collections.abc import Sequence

from modelroute.dashboard.views import Snapshot, SnapshotKind
from modelroute.policy import Policy
from modelroute.records.stores.base import Store

KINDS: tuple[SnapshotKind, ...] = ("audit", "drift")


async def refresh(
    store: Store,
    policy: Policy | None = None,
    *,
    kinds: Sequence[SnapshotKind] = KINDS,
    now: float | None = None,
) -> list[Snapshot]:
    """Compute each of ``kinds`` over the store and store the result; returns them."""
    raise NotImplementedError


class SnapshotRefresher:
    """Runs ``refresh`` every ``every_s`` seconds (the first right after ``start``) until
    ``close``; a failed run is logged and retried at the next interval."""

    def __init__(self, store: Store, policy: Policy | None = None, every_s: float = 600.0) -> None:
        self.store = store
        self.policy = policy
        self.every_s = every_s

    async def start(self) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError
