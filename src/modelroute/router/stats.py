"""The statistics the planner reads: the measured ones plus the circuits open right now."""

from __future__ import annotations

from collections.abc import Callable

from modelroute.planner import StatsSnapshot
from modelroute.state.circuits import CircuitState

StatsSource = Callable[[], StatsSnapshot]


class PlannerStats:
    """``source``'s measured stats merged with ``breakers``' open circuits; the merge is
    rebuilt only when either changes."""

    def __init__(self, source: StatsSource, breakers: CircuitState) -> None:
        self.source = source
        self.breakers = breakers
        self._merged: tuple[StatsSnapshot | None, frozenset[str], StatsSnapshot] | None = None

    def __call__(self) -> StatsSnapshot:
        base = self.source()
        opened = self.breakers.open_models()
        cached = self._merged
        if cached is not None and cached[0] is base and cached[1] is opened:
            return cached[2]
        merged = StatsSnapshot(
            by_route=base.by_route if base else {},
            by_model=base.by_model if base else {},
            open_circuits=opened | (base.open_circuits if base else frozenset()),
        )
        self._merged = (base, opened, merged)
        return merged
