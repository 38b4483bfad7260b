"""The planner's statistics with quality measured from the store's outcomes.

``MeasuredQuality`` is a stats source (a callable returning a ``StatsSnapshot``) for the
``Router``: latency and error figures come from the router's rolling window over its own
records; quality, for each (route, model) the store has outcomes for, comes from the
aggregate of the current provider-reported version's outcomes (see ``aggregate.py``), with
its interval, sources and version. Where the store has none for a (route, model), the rolling
window's feedback stands in. A request counts once either way: feedback is stored as an outcome
too, and the rolling window is read only where the store has nothing.

The aggregates are loaded when the router starts and refreshed every ``interval_s`` seconds
by a background task, off the request path; the request path only merges two snapshots it
already holds, and only when one of them changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import Callable, Collection, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING

from modelroute.planner.stats import ModelStats, StatsSnapshot

if TYPE_CHECKING:
    from modelroute.outcomes.aggregate import Aggregate
    from modelroute.records.stores.base import Store

log = logging.getLogger("modelroute.outcomes")

DEFAULT_REFRESH_S = 60.0


def quality_figures(agg: Aggregate) -> dict[str, object]:
    """The ``ModelStats`` quality fields of an aggregate."""
    iv = agg.interval
    return {
        "quality": iv.mean,
        "quality_samples": iv.n,
        "quality_low": iv.low,
        "quality_high": iv.high,
        "quality_sources": agg.source_label,
        "quality_version": agg.version,
    }


def merge(rolling: StatsSnapshot, measured: Mapping[tuple[str, str], Aggregate]) -> StatsSnapshot:
    """``rolling`` with the quality of every (route, model) in ``measured`` replaced by it."""
    if not measured:
        return rolling
    by_route = dict(rolling.by_route)
    for key, agg in measured.items():
        figures = quality_figures(agg)
        base = by_route.get(key)
        by_route[key] = (
            ModelStats(**figures)  # type: ignore[arg-type]
            if base is None
            else dataclasses.replace(base, **figures)  # type: ignore[arg-type]
        )
    return StatsSnapshot(MappingProxyType(by_route), rolling.by_model, rolling.open_circuits)


class MeasuredQuality:
    """A stats source: ``rolling()`` merged with the store's quality aggregates."""

    def __init__(
        self,
        store: Store,
        rolling: Callable[[], StatsSnapshot],
        *,
        interval_s: float = DEFAULT_REFRESH_S,
        models: Collection[str] | None = None,
    ) -> None:
        """``models``: keep the figures of these models only (the policy's), if given."""
        if not interval_s > 0:
            raise ValueError(f"the quality refresh interval must be above 0, got {interval_s}")
        self.store = store
        self.rolling = rolling
        self.interval_s = interval_s
        self.models = None if models is None else frozenset(models)
        self.measured: Mapping[tuple[str, str], Aggregate] = MappingProxyType({})
        self.refreshes = 0  # completed loads, for /metrics and tests
        self._merged: tuple[StatsSnapshot, Mapping[tuple[str, str], Aggregate], StatsSnapshot]
        self._merged = (StatsSnapshot(), self.measured, StatsSnapshot())
        self._task: asyncio.Task[None] | None = None

    def __call__(self) -> StatsSnapshot:
        """The merged snapshot; the same object until either part changes (callers cache on
        identity)."""
        base = self.rolling()
        seen, measured, merged = self._merged
        if seen is base and measured is self.measured:
            return merged
        merged = merge(base, self.measured)
        self._merged = (base, self.measured, merged)
        return merged

    async def refresh(self) -> None:
        """Load the aggregates from the store now."""
        # numpy and scipy load here, when there is something to aggregate: a router without
        # a store, or a command that only reads a policy, never pays their import time
        from modelroute.outcomes.aggregate import current, load

        aggregates = await load(self.store, "route")
        found = current(aggregates)
        if self.models is not None:
            found = {k: a for k, a in found.items() if k[1] in self.models}
        self.measured = MappingProxyType(found)
        self.refreshes += 1

    async def start(self) -> None:
        """Load the aggregates once, then keep refreshing them in the background. A store
        that cannot be read now is tried again at the next refresh; meanwhile the rolling
        window's figures serve."""
        if self._task is not None:
            return
        await self._refresh_logged()
        self._task = asyncio.create_task(self._run(), name="modelroute-quality-refresh")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self._refresh_logged()

    async def _refresh_logged(self) -> None:
        try:
            await self.refresh()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store is down, or not open yet: try again later
            log.warning("could not load measured quality from the store: %r", exc)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
