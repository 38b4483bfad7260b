"""Prometheus metrics computed from the records stream.

``MetricsSink`` is a ``RecordSink``: the router hands it each finished record and nothing else
on the request path knows metrics exist. Every number below is derived from the records, so a
scrape can be checked against them.

- ``modelroute_requests_total{route,model,status}``: one per record; ``model`` is the final
  model (as for every request-level metric below).
- ``modelroute_errors_total{route,model,failure}``: records with a failure class (statuses
  ``failed`` and ``stream_error``).
- ``modelroute_attempt_failures_total{route,model,failure}``: every attempt with outcome
  ``failed``; ``model`` is the attempt's model.
- ``modelroute_request_latency_seconds{route,model}``: histogram of every record's latency.
- ``modelroute_ttft_seconds{route,model}``: histogram of streamed records' time to first token.
- ``modelroute_tokens_total{route,model,kind}``: per attempt, ``model`` the attempt's; kinds
  ``input`` (every prompt token, cached and cache-written ones included), ``output``
  (reasoning included), ``cached_input``, ``cache_write``, ``reasoning``. Summed over
  ``model`` they equal the records' ``usage``.
- ``modelroute_cost_usd_total{route,model}``: per attempt, ``model`` the attempt's, so a
  cascade's cheap tier and a verifier are charged to their own models; summed over ``model``
  it equals the records' ``cost_usd``.
- ``modelroute_unpriced_requests_total{route,model}``: records with ``price_unknown``.
- ``modelroute_fallbacks_total{route,model}``: records for which ``is_fallback`` holds.
- ``modelroute_escalations_total{route,model}``: the sum of records' ``escalations``.
- ``modelroute_cache_requests_total{route,model,result}``: records that consulted the
  response cache, ``result`` ``hit`` (an exact repeat), ``semantic_hit`` (a paraphrase, on a
  route with ``mode: semantic``) or ``miss`` (``cache_hit``); ``model`` the final one.
- ``modelroute_cache_saved_usd_total{route,model}``: the sum of hits' ``cache_saved_usd``.
- ``modelroute_circuit_state{model}``: 0 closed, 1 half-open, 2 open, read at scrape time.
- ``modelroute_record_queue_depth``, ``modelroute_record_spool_size``: records waiting for
  the store writer, and spooled during a store outage (when their sources are given).

A record without a route (an unknown route) or without a final model (nothing answered) is
labelled with the empty string, which Prometheus treats as an absent label.

Multi-process: prometheus_client decides at import time, from ``PROMETHEUS_MULTIPROC_DIR``,
whether metric values live in per-process files. When they do, ``render`` aggregates every
worker's files (``MultiProcessCollector``), gauges included: the circuit state is the worst
over live workers (``livemax``), queue depth and spool size are summed over live workers
(``livesum``). A worker writes its gauges when scraped and at most once a ``gauge_interval_s``
while it serves records, so another worker's gauges are that fresh. Call ``mark_worker_dead``
when a worker exits, or its last gauge values stay in the sum. One ``MetricsSink`` per process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, values
from prometheus_client.exposition import choose_encoder
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

from modelroute.records.record import AttemptResult, RequestRecord
from modelroute.state.breakers import CLOSED, HALF_OPEN, OPEN
from modelroute.types import Usage

log = logging.getLogger(__name__)

# From a fast cache hit to a long reasoning answer.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)
CIRCUIT_CODES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}
ROUTE_MODEL = ("route", "model")
QUEUE_DOC = "Records waiting for the store writer."
SPOOL_DOC = "Records spooled while the store is unavailable."
TOKEN_KINDS = ("input", "output", "cached_input", "cache_write", "reasoning")

_T = TypeVar("_T")
_Inc = Callable[[Counter, float], None]


def is_fallback(record: RequestRecord) -> bool:
    """Did a model other than the plan's first choice answer, because something failed?

    True when the answering model is not the first one attempted in its tier (the first
    failed, was skipped by an open circuit, or lost a hedge), or when an earlier tier of a
    cascade ended without an answer to doubt (every candidate failed). A cascade escalating on
    low confidence alone is not a fallback (``modelroute_escalations_total`` counts those), nor
    are verifier calls (tier -1) or retries that the first model answered.
    """
    final = record.final_model
    attempts = record.attempts
    if final is None or not attempts or (len(attempts) == 1 and attempts[0].model == final):
        return False
    candidates = [a for a in attempts if a.tier >= 0]
    final_tier = next((a.tier for a in reversed(candidates) if a.model == final), None)
    if final_tier is None:
        return False
    first = next(a for a in candidates if a.tier == final_tier)
    if first.model != final:
        return True
    earlier = {a.tier for a in candidates if a.tier < final_tier}
    doubted = {a.tier for a in candidates if a.outcome == AttemptResult.LOW_CONFIDENCE}
    return bool(earlier - doubted)


def _inc_now(child: Counter, amount: float) -> None:
    child.inc(amount)


def mark_worker_dead(pid: int, path: str | None = None) -> None:
    """Drop a dead worker's live gauges (multi-process mode); its counters stay counted."""
    mark_process_dead(pid, path)  # type: ignore[no-untyped-call]  # untyped upstream


def multiprocess_enabled() -> bool:
    """Whether prometheus_client keeps values in per-process files (decided at its import)."""
    return bool(getattr(values.ValueClass, "_multiprocess", False))


class _Families:
    """The metric families, registered in one private registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry
        self.requests = self._counter(
            "requests", "Client requests by final model, status.", "status"
        )
        self.errors = self._counter("errors", "Failed requests by failure class.", "failure")
        self.attempt_failures = self._counter(
            "attempt_failures", "Failed upstream attempts by the attempt's model.", "failure"
        )
        self.latency = self._histogram("request_latency_seconds", "Latency the client saw.")
        self.ttft = self._histogram("ttft_seconds", "Time to first token of streamed requests.")
        self.tokens = self._counter("tokens", "Tokens by the attempt's model and kind.", "kind")
        self.cost = self._counter("cost_usd", "Cost in US dollars by the attempt's model.")
        self.unpriced = self._counter("unpriced_requests", "Requests with an unknown price.")
        self.fallbacks = self._counter("fallbacks", "Requests answered by a fallback model.")
        self.escalations = self._counter("escalations", "Cascade escalations (low confidence).")
        self.cache = self._counter(
            "cache_requests", "Requests that consulted the response cache.", "result"
        )
        self.cache_saved = self._counter(
            "cache_saved_usd", "What cache hits' answers cost when made (US dollars), saved."
        )
        self.state_errors = Counter(
            "modelroute_state_errors",
            "Operations that could not reach the shared state (Redis), by what they did instead",
            ("operation", "outcome"),
            registry=registry,
        )
        self.circuit = Gauge(
            "modelroute_circuit_state",
            "Circuit breaker: 0 closed, 1 half-open, 2 open.",
            ("model",),
            registry=registry,
            multiprocess_mode="livemax",
        )

    def _counter(self, name: str, doc: str, *labels: str) -> Counter:
        return Counter(f"modelroute_{name}", doc, (*ROUTE_MODEL, *labels), registry=self._registry)

    def _histogram(self, name: str, doc: str) -> Histogram:
        return Histogram(
            f"modelroute_{name}", doc, ROUTE_MODEL, registry=self._registry, buckets=LATENCY_BUCKETS
        )


class _Series:
    """A request's children for one (route, final model) pair, looked up once."""

    __slots__ = ("escalations", "fallbacks", "latency", "ttft", "unpriced")

    def __init__(self, f: _Families, route: str, model: str) -> None:
        self.latency = f.latency.labels(route, model)
        self.ttft = f.ttft.labels(route, model)
        self.unpriced = f.unpriced.labels(route, model)
        self.fallbacks = f.fallbacks.labels(route, model)
        self.escalations = f.escalations.labels(route, model)


class _Spend:
    """An attempt's children for one (route, attempt model) pair: tokens and cost."""

    __slots__ = ("cost", "tokens")

    def __init__(self, f: _Families, route: str, model: str) -> None:
        self.cost = f.cost.labels(route, model)
        self.tokens = tuple(f.tokens.labels(route, model, kind) for kind in TOKEN_KINDS)

    def add(self, usage: Usage | None, cost: float | None, inc: _Inc) -> None:
        if usage is not None:
            counts = (
                usage.input_tokens,
                usage.output_tokens,
                usage.cached_input_tokens,
                usage.cache_write_tokens,
                usage.reasoning_tokens,
            )
            for child, count in zip(self.tokens, counts, strict=True):
                if count > 0:
                    inc(child, count)
        if cost is not None and cost > 0:
            inc(self.cost, cost)


class MetricsSink:
    """A ``RecordSink`` that keeps Prometheus metrics; ``render()`` serves them.

    ``circuit_states`` (model -> ``closed|half_open|open``, e.g. ``Breakers.snapshot``),
    ``queue_depth`` and ``spool_size`` are read when scraped; they may also be given later
    through ``watch`` (the breakers are often built after the sinks). ``multiprocess``: ``None``
    follows prometheus_client; ``True`` insists on multi-process mode and fails loudly when
    ``PROMETHEUS_MULTIPROC_DIR`` was not set before prometheus_client was imported.
    """

    def __init__(
        self,
        *,
        circuit_states: Callable[[], dict[str, str]] | None = None,
        queue_depth: Callable[[], int] | None = None,
        spool_size: Callable[[], int] | None = None,
        multiprocess: bool | None = None,
        gauge_interval_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        enabled = multiprocess_enabled()
        if multiprocess and not enabled:
            raise RuntimeError(
                "multi-process metrics need PROMETHEUS_MULTIPROC_DIR set before "
                "prometheus_client is imported (set it before starting the workers)"
            )
        self.multiprocess = enabled if multiprocess is None else multiprocess
        self.registry = CollectorRegistry()  # the families, never the global default registry
        self._f = _Families(self.registry)
        self._scrape = self.registry
        if self.multiprocess:
            self._scrape = CollectorRegistry()
            MultiProcessCollector(self._scrape)  # type: ignore[no-untyped-call]
        # Counter increments wait here until a scrape (one dict update each instead of a locked
        # prometheus_client increment). In multi-process mode they go to the shared files at
        # once: another worker may serve the scrape, and a worker may exit without a flush.
        self._pending: dict[Counter, float] = {}
        self._inc: _Inc = _inc_now if self.multiprocess else self._defer
        self._series: dict[tuple[str, str], _Series] = {}
        self._spend: dict[tuple[str, str], _Spend] = {}
        self._requests: dict[tuple[str, str, str], Counter] = {}
        self._errors: dict[tuple[str, str, str], Counter] = {}
        self._attempt_failures: dict[tuple[str, str, str], Counter] = {}
        self._cache: dict[tuple[str, str, str], Counter] = {}
        self._cache_saved: dict[tuple[str, str], Counter] = {}
        self._circuit_states: Callable[[], dict[str, str]] | None = None
        self._queue: tuple[Callable[[], int], Gauge] | None = None
        self._spool: tuple[Callable[[], int], Gauge] | None = None
        self._broken: set[str] = set()
        self._interval = gauge_interval_s
        self._clock = clock
        self._next_gauges = 0.0
        self.watch(circuit_states=circuit_states, queue_depth=queue_depth, spool_size=spool_size)

    def watch(
        self,
        *,
        circuit_states: Callable[[], dict[str, str]] | None = None,
        queue_depth: Callable[[], int] | None = None,
        spool_size: Callable[[], int] | None = None,
    ) -> None:
        """Set the sources of the scrape-time gauges (each one given replaces the previous)."""
        if circuit_states is not None:
            self._circuit_states = circuit_states
        if queue_depth is not None:
            gauge = self._queue[1] if self._queue else self._gauge("queue_depth", QUEUE_DOC)
            self._queue = (queue_depth, gauge)
        if spool_size is not None:
            gauge = self._spool[1] if self._spool else self._gauge("spool_size", SPOOL_DOC)
            self._spool = (spool_size, gauge)
        if self.multiprocess:
            self._write_gauges()

    def state_error(self, operation: str, outcome: str) -> None:
        """``modelroute_state_errors_total{operation, outcome}``: an operation that could not
        reach the shared state, and what it did instead (``open``: admitted unchecked,
        ``closed``: refused, ``local``: breakers judged by this replica alone, ``miss``: a
        cache lookup missed, ``skipped``: an entry not kept)."""
        self._f.state_errors.labels(operation, outcome).inc()

    def _gauge(self, name: str, doc: str) -> Gauge:
        return Gauge(
            f"modelroute_record_{name}", doc, registry=self.registry, multiprocess_mode="livesum"
        )

    # -- the request path: once per record, on the event loop --------------------------------

    def submit(self, record: RequestRecord) -> None:
        inc = self._inc
        route = record.route or ""
        model = record.final_model or ""
        series = self._series.get((route, model)) or self._new_series(route, model)
        key: tuple[str, str, str] = (route, model, record.status)
        inc(self._requests.get(key) or self._child(self._requests, self._f.requests, key), 1)
        series.latency.observe(record.latency_ms / 1000)
        if record.streamed and record.ttft_ms is not None:
            series.ttft.observe(record.ttft_ms / 1000)
        if record.failure is not None:
            key = (route, model, record.failure)
            inc(self._errors.get(key) or self._child(self._errors, self._f.errors, key), 1)
        if record.price_unknown:
            inc(series.unpriced, 1)
        if record.escalations > 0:
            inc(series.escalations, record.escalations)
        if record.cache_hit is not None:
            self._cached(record, route, model)
        if record.attempts:
            self._attempts(record, route)
            if is_fallback(record):
                inc(series.fallbacks, 1)
        if self.multiprocess and self._clock() >= self._next_gauges:
            self._write_gauges()

    def _cached(self, record: RequestRecord, route: str, model: str) -> None:
        hit = "semantic_hit" if record.cache_similarity is not None else "hit"
        key = (route, model, hit if record.cache_hit else "miss")
        self._inc(self._cache.get(key) or self._child(self._cache, self._f.cache, key), 1)
        if record.cache_hit and record.cache_saved_usd:
            saved = self._cache_saved.get((route, model))
            if saved is None:
                saved = self._cache_saved[(route, model)] = self._f.cache_saved.labels(route, model)
            self._inc(saved, record.cache_saved_usd)

    def _attempts(self, record: RequestRecord, route: str) -> None:
        for attempt in record.attempts:
            if attempt.outcome == AttemptResult.FAILED:
                key = (route, attempt.model, attempt.failure or "unknown")
                failures = self._attempt_failures
                child = failures.get(key) or self._child(failures, self._f.attempt_failures, key)
                self._inc(child, 1)
            if attempt.usage is None and not attempt.cost_usd:
                continue
            spend = self._spend.get((route, attempt.model))
            if spend is None:
                spend = self._spend[(route, attempt.model)] = _Spend(self._f, route, attempt.model)
            spend.add(attempt.usage, attempt.cost_usd, self._inc)

    def _defer(self, child: Counter, amount: float) -> None:
        pending = self._pending
        pending[child] = pending.get(child, 0.0) + amount

    def _flush(self) -> None:
        pending, self._pending = self._pending, {}
        for child, amount in pending.items():
            child.inc(amount)

    def _new_series(self, route: str, model: str) -> _Series:
        series = self._series[(route, model)] = _Series(self._f, route, model)
        return series

    @staticmethod
    def _child(
        cache: dict[tuple[str, str, str], Counter], family: Counter, key: tuple[str, str, str]
    ) -> Counter:
        child = cache[key] = family.labels(*key)
        return child

    # -- scrape time -------------------------------------------------------------------------

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition (body, content type); every worker's in multi-process mode.

        ``accept``: the scrape's Accept header, for OpenMetrics when asked; the default is the
        Prometheus text format 0.0.4."""
        self._flush()
        self._write_gauges()
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self._scrape), content_type

    def _write_gauges(self) -> None:
        self._next_gauges = self._clock() + self._interval
        if self._circuit_states is not None:
            states = self._read("circuit_states", self._circuit_states)
            for name, state in (states or {}).items():
                code = CIRCUIT_CODES.get(state)
                if code is not None:
                    self._f.circuit.labels(name).set(code)
        for label, source in (("queue_depth", self._queue), ("spool_size", self._spool)):
            if source is not None:
                value = self._read(label, source[0])
                if value is not None:
                    source[1].set(value)

    def _read(self, label: str, source: Callable[[], _T]) -> _T | None:
        try:
            return source()
        except Exception:
            if label not in self._broken:
                self._broken.add(label)
                log.exception("metrics source %s failed; its gauge keeps its last value", label)
            return None
