"""Rolling statistics per (route, model), computed from the records stream, read by the
planner as an immutable snapshot.

``RollingStats`` is a record sink: each finished record adds its attempts' latencies and
outcomes to bounded windows; feedback adds quality scores, one per request (a later score for
the same request replaces the earlier). ``snapshot()`` returns a ``StatsSnapshot`` rebuilt at
most every ``refresh_s`` seconds, so planning never pays for aggregation. Latency with too few
samples is left out; quality is reported with its count of rated requests, and the planner
decides (by the policy's ``defaults.quality.min_samples``) whether it replaces the prior.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import NamedTuple

from modelroute.planner.stats import ModelStats, StatsSnapshot
from modelroute.policy.schema import QUALITY_WINDOW
from modelroute.records.record import ANSWERED, AttemptResult, RequestRecord
from modelroute.state.recent import RecentRequests

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


class Served(NamedTuple):
    """What feedback needs to know about a request this process served."""

    route: str | None
    model: str | None  # the model that answered, if any
    client_key_id: str | None  # the hash of the caller's key; None: no credentials
    # what a rating stored as an outcome keeps of the request
    task: str | None = None
    reported_model: str | None = None
    cost_usd: float | None = None
    latency_ms: float | None = None


def served(record: RequestRecord) -> Served:
    return Served(
        record.route, record.final_model, record.client_key_id, record.task,
        record.final_reported_model, record.cost_usd, record.latency_ms,
    )  # fmt: skip


@dataclass(slots=True)
class _Window:
    latencies: deque[float]
    outcomes: deque[bool]  # True: the attempt succeeded
    scores: OrderedDict[str, float]  # request id -> its latest score, oldest rated first
    size: int

    @classmethod
    def new(cls, size: int) -> _Window:
        return cls(deque(maxlen=size), deque(maxlen=size), OrderedDict(), size)

    def rate(self, request_id: str, score: float | None) -> None:
        """The request's score replaces any earlier one; None withdraws it."""
        self.scores.pop(request_id, None)
        if score is not None:
            self.scores[request_id] = score
            if len(self.scores) > self.size:
                self.scores.popitem(last=False)


def _percentile(values: Iterable[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass(slots=True)
class RollingStats:
    window: int = QUALITY_WINDOW  # samples (and rated requests) kept per (route, model)
    min_latency_samples: int = 20
    refresh_s: float = 1.0
    clock: Callable[[], float] = time.monotonic
    _by_route: dict[tuple[str, str], _Window] = field(default_factory=dict)
    _by_model: dict[str, _Window] = field(default_factory=dict)
    # requests served lately, for feedback (``state/recent.py``); the router bounds it by age
    # when records reach a store
    recent: RecentRequests[Served] = field(default_factory=RecentRequests)
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
        # Every request is remembered (feedback may come for it), routed or not.
        self.recent.add(record.request_id, served(record))
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
        self._dirty = True

    def served(self, request_id: str) -> Served | None:
        """The request, if this process served it recently."""
        return self.recent.get(request_id)

    def add_quality(self, route: str, model: str, request_id: str, score: float | None) -> None:
        """The request's quality score; it replaces any earlier score of the same request, so
        each request counts once. None (feedback without a score) withdraws an earlier one."""
        for window in self._windows(route, model):
            window.rate(request_id, score)
        self._dirty = True

    def impose(
        self,
        by_route: Mapping[tuple[str, str], Sequence[float | None]],
        by_model: Mapping[str, Sequence[float | None]],
    ) -> None:
        """Replace latency and outcome windows by shared ones (every replica's attempts,
        ``state/shared_stats.py``), oldest first: a latency in milliseconds for a success,
        ``None`` for a failure. Quality scores stay this process's."""
        for (route, model), samples in by_route.items():
            self._fill(self._windows(route, model)[0], samples)
        for model, samples in by_model.items():
            window = self._by_model.get(model)
            if window is None:
                window = self._by_model[model] = _Window.new(self.window)
            self._fill(window, samples)
        self._dirty = True

    def _fill(self, window: _Window, samples: Sequence[float | None]) -> None:
        window.outcomes = deque((s is not None for s in samples), maxlen=self.window)
        window.latencies = deque((s for s in samples if s is not None), maxlen=self.window)

    def _stats(self, window: _Window) -> ModelStats | None:
        latency = len(window.latencies) >= self.min_latency_samples
        rated = len(window.scores)
        if not latency and not rated and len(window.outcomes) < self.min_latency_samples:
            return None
        outcomes = window.outcomes
        return ModelStats(
            latency_p50_ms=_percentile(window.latencies, 0.5) if latency else None,
            latency_p95_ms=_percentile(window.latencies, 0.95) if latency else None,
            error_rate=(outcomes.count(False) / len(outcomes)) if outcomes else None,
            quality=sum(window.scores.values()) / rated if rated else None,
            samples=len(outcomes),
            quality_samples=rated,
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
