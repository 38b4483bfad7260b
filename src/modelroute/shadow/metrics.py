"""Prometheus metrics of shadow comparisons, beside the request metrics at ``/metrics``.

Shadow calls make no request records, so these are counted where they happen, in the shadow
worker (and, for a full queue, where a sampled request is offered):

- ``modelroute_shadow_requests_total{route,model}``: shadow calls sent (one per shadow model
  of a sampled request; its retries, under the model's own policy, are one call);
- ``modelroute_shadow_skipped_total{route,model,reason}``: sampled but not sent: ``budget``
  (the route's daily budget would be exceeded), ``queue_full`` (the worker's queue was full),
  ``context`` (the prompt and output estimate exceed the shadow model's context window),
  ``circuit_open`` (the shadow model's own breaker is open: it failed too often lately),
  ``shutdown`` (still queued when the router closed). Requests not sampled are not counted;
- ``modelroute_shadow_failures_total{route,model,failure}``: shadow calls that ended without a
  comparison: the failure class of the call, ``judge_`` and the class when judging failed
  (``judge_verdict``: its reply was no verdict), ``cancelled`` when the router closed first,
  ``store`` when the outcome could not be stored;
- ``modelroute_shadow_cost_usd_total{route,model}``: shadow spend, ``model`` the model that
  spent it (a shadow model, or the judge);
- ``modelroute_shadow_outcomes_total{route,model}``: comparisons stored as outcomes;
- ``modelroute_shadow_pending``: sampled requests not compared yet (queued, or in progress):
  0 once every comparison so far has ended in one of the counts above.

Register them in the gateway's ``MetricsSink.registry`` to serve them with the rest; under
several workers (prometheus multi-process mode) their values are shared like the others.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge

ROUTE_MODEL = ("route", "model")


class ShadowMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        self.requests = self._counter("requests", "Shadow calls sent.")
        self.skipped = self._counter("skipped", "Sampled shadow calls not sent.", "reason")
        self.failures = self._counter(
            "failures", "Shadow calls that ended without a comparison.", "failure"
        )
        self.cost = self._counter("cost_usd", "Shadow spend in US dollars by the model.")
        self.outcomes = self._counter("outcomes", "Shadow comparisons stored as outcomes.")
        self.pending = Gauge(
            "modelroute_shadow_pending",
            "Sampled requests not compared yet (queued or in progress).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )

    def _counter(self, name: str, doc: str, *labels: str) -> Counter:
        return Counter(
            f"modelroute_shadow_{name}", doc, (*ROUTE_MODEL, *labels), registry=self.registry
        )

    def sent(self, route: str, model: str) -> None:
        self.requests.labels(route, model).inc()

    def skip(self, route: str, model: str, reason: str) -> None:
        self.skipped.labels(route, model, reason).inc()

    def fail(self, route: str, model: str, failure: str) -> None:
        self.failures.labels(route, model, failure).inc()

    def spend(self, route: str, model: str, usd: float) -> None:
        if usd > 0:
            self.cost.labels(route, model).inc(usd)

    def stored(self, route: str, model: str, count: int = 1) -> None:
        self.outcomes.labels(route, model).inc(count)

    def value(self, name: str, **labels: str) -> float:
        """One sample's current value (0 when never counted), e.g.
        ``value("requests", route="chat", model="small")``."""
        found = self.registry.get_sample_value(f"modelroute_shadow_{name}_total", labels)
        return found or 0.0
