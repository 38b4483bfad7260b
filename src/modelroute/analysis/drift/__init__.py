"""Drift detection: version changes, regressions, task-mix shift and routing drift, read from
the record store (``check``), announced once per condition (``alerts``), and run periodically
by the gateway (``watch``)."""

from modelroute.analysis.drift.check import Report, check
from modelroute.analysis.drift.findings import Finding
from modelroute.analysis.drift.settings import Thresholds, Windows

__all__ = ["Finding", "Report", "Thresholds", "Windows", "check"]
