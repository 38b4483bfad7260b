"""Rolling statistics per (route, model), computed from the records stream, read by the
planner as an immutable snapshot.

``RollingStats`` is a record sink: each finished record adds its attempts' latencies and
outcomes to bounded windows; feedback adds quality scores. ``snapshot()`` returns a
``StatsSnapshot`` rebuilt at most every ``refresh_s`` seconds, so planning never pays for
aggregation. Figures with too few samples are left out and the planner falls back on the
policy's priors.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import MappingProxyType

from modelroute.planner.stats import ModelStats, StatsSnapshot
from modelroute.records.record import ANSWERED, AttemptResult, RequestRecord

POSITIVE = frozenset({"correct", "good", "positive", "thumbs_up", "accepted", "pass", "yes"})
NEGATIVE = frozenset({"incorrect", "bad", "negative", "thumbs_down", "rejected", "fail", "no"})


def label_score(label: str | None) -> float | None:
    if label is None:
        return None
    lowered = label.strip().lower()
    if lowered in POSITIVE:
        return 1.0
    if lowered in NEGATIVE:
        return 0.0
    return None


@dataclass(slots=True)
class _Window:
    latencies: deque[float]
    outcomes: deque[bool]  # True: the attempt succeeded
    scores: deque[float]

    @classmethod
    def new(cls, size: int) -> _Window:
        return cls(deque(maxlen=size), deque(maxlen=size), deque(maxlen=size))


def _percentile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(slots=True)
class RollingStats:
    window: int = 500  # samples kept per (route, model)
    min_latency_samples: int = 20
    min_quality_samples: int = 10
    refresh_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _by_route: dict[tuple[str, str], _Window] = field(default_factory=dict)
    _by_model: dict[str, _Window] = field(default_factory=dict)
    _recent: OrderedDict[str, tuple[str, str]] = field(default_factory=OrderedDict)
    _snapshot: StatsSnapshot = field(default_factory=StatsSnapshot)
    _built_at: float = float("-inf")
    _dirty: bool = False

    def _windows(self, route: str, model: str) -> tuple[_Window, _Window]:
        key = (route, model)
        per_route = self._by_route.get(key)
        if per_route is None:
            per_route = self._by_route[key] = _Window.new(self.window)
        per_model = self._by_model.get(model)
        if per_model is None:
            per_model = self._by_model[model] = _Window.new(self.window)
        return per_route, per_model

    def submit(self, record: RequestRecord) -> None:
        """Take one finished request's attempts into the windows."""
        route = record.route
        if route is None:
            return
        for attempt in record.attempts:
            if attempt.outcome in (AttemptResult.SKIPPED, AttemptResult.CANCELLED):
                continue
            ok = attempt.outcome in ANSWERED
            for window in self._windows(route, attempt.model):
                window.outcomes.append(ok)
                if ok:
                    window.latencies.append(attempt.latency_ms)
        if record.final_model is not None:
            self._recent[record.request_id] = (route, record.final_model)
            if len(self._recent) > 50_000:
                self._recent.popitem(last=False)
        self._dirty = True

    def route_and_model(self, request_id: str) -> tuple[str, str] | None:
        return self._recent.get(request_id)

    def add_quality(self, route: str, model: str, score: float) -> None:
        for window in self._windows(route, model):
            window.scores.append(score)
        self._dirty = True

    def _stats(self, window: _Window) -> ModelStats | None:
        latency = len(window.latencies) >= self.min_latency_samples
        quality = len(window.scores) >= self.min_quality_samples
        if not latency and not quality and len(window.outcomes) < self.min_latency_samples:
            return None
        outcomes = window.outcomes
        return ModelStats(
            latency_p50_ms=_percentile(window.latencies, 0.5) if latency else None,
            latency_p95_ms=_percentile(window.latencies, 0.95) if latency else None,
            error_rate=(outcomes.count(False) / len(outcomes)) if outcomes else None,
            quality=sum(window.scores) / len(window.scores) if quality else None,
            samples=len(outcomes),
        )

    def snapshot(self) -> StatsSnapshot:
        """The current figures; the same object until something changed and ``refresh_s``
        passed, so callers may cache on identity."""
        now = self.clock()
        if self._dirty and now - self._built_at >= self.refresh_s:
            by_route = {k: s for k, w in self._by_route.items() if (s := self._stats(w))}
            by_model = {k: s for k, w in self._by_model.items() if (s := self._stats(w))}
            self._snapshot = StatsSnapshot(MappingProxyType(by_route), MappingProxyType(by_model))
            self._built_at, self._dirty = now, False
        return self._snapshot
