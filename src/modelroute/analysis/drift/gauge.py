"""Drift at ``/metrics``, in the gateway's registry (``records/metrics.py``'s ``MetricsSink``).

- ``modelroute_drift_alert{kind,route,model,condition}``: 1 while a condition alerts, 0 once
  a later check finds it cleared;
- ``modelroute_drift_last_check_timestamp_seconds``: when the last check finished.

Both are the largest value over live workers in multi-process mode (``livemax``): every
worker checks the same store, so each reports the conditions it found.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Gauge

from modelroute.analysis.drift.findings import Finding


def labels(condition: str) -> tuple[str, str, str, str]:
    """(kind, route, model, condition) of a condition such as
    ``latency|route=chat|model=small|version=v2``."""
    kind, *parts = condition.split("|")
    subject = dict(p.partition("=")[::2] for p in parts)
    return kind, subject.get("route", ""), subject.get("model", ""), condition


class DriftGauge:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.alert = Gauge(
            "modelroute_drift_alert",
            "Drift alert conditions: 1 while one holds, 0 once cleared.",
            ("kind", "route", "model", "condition"),
            registry=registry,
            multiprocess_mode="livemax",
        )
        self.checked = Gauge(
            "modelroute_drift_last_check_timestamp_seconds",
            "When the last drift check finished (unix seconds).",
            registry=registry,
            multiprocess_mode="livemax",
        )

    def show(self, active: Iterable[Finding], cleared: Iterable[str], at: float) -> None:
        for finding in active:
            self.alert.labels(*labels(finding.condition)).set(1)
        for condition in cleared:
            self.alert.labels(*labels(condition)).set(0)
        self.checked.set(at)
