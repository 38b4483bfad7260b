"""One drift check over a store: every finding of two windows, corrected and decided.

The order: the request aggregates (one pass over the drift index), the version changes,
the regressions, the task mix, then routing drift when a policy is given. Every finding that
carries a p-value is corrected together with the others of the check (Benjamini-Hochberg),
so a check that runs many tests does not alert more often for it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from modelroute.analysis.drift import mix, queries, regressions, significance
from modelroute.analysis.drift.findings import KINDS, Finding
from modelroute.analysis.drift.routing import routing_findings
from modelroute.analysis.drift.settings import Thresholds, Windows
from modelroute.analysis.drift.versions import seen_versions, version_findings
from modelroute.policy import Policy
from modelroute.records.stores.base import Store

_ORDER = {"alert": 0, "not_enough_data": 1, "ok": 2}


@dataclass(slots=True)
class Report:
    windows: Windows
    thresholds: Thresholds
    findings: list[Finding]
    checked_at: float
    policy: str | None = None  # the policy's hash, when one was given
    notes: list[str] = field(default_factory=list)

    @property
    def alerts(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "alert"]

    def counts(self) -> dict[str, int]:
        found = {"alert": 0, "ok": 0, "not_enough_data": 0}
        for f in self.findings:
            found[f.status] += 1
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "checked_at": self.checked_at,
            "windows": self.windows.to_dict(),
            "thresholds": self.thresholds.to_dict(),
            "policy": self.policy,
            "counts": self.counts(),
            "notes": self.notes,
            "findings": [f.to_dict() for f in self.findings],
        }


async def check(
    store: Store,
    windows: Windows,
    thresholds: Thresholds | None = None,
    policy: Policy | None = None,
) -> Report:
    t = thresholds or Thresholds()
    started = time.time()
    rows = await queries.groups(store, windows)
    findings = await version_findings(store, windows, seen_versions(rows), policy)
    findings += await regressions.served(store, windows, rows, t)
    findings += regressions.first_attempts(rows, t, _cascades(rows, policy))
    findings += await regressions.quality(
        store, windows, await queries.outcome_groups(store, windows), t
    )
    n = sum(r.n_current for r in rows)
    base_n = sum(r.n_baseline for r in rows)
    findings.append(await mix.prompt_size(store, windows, n, base_n, t))
    for kind, by in (("task_mix", "task"), ("route_mix", "route")):
        findings.append(mix.share_finding(kind, *mix.shares(rows, by), t))
    notes = []
    if policy is not None:
        findings += await routing_findings(store, rows, policy)
    else:
        notes.append("no policy given: pinned versions and routing drift were not checked")
    decide(findings, t.alpha)
    return Report(
        windows, t, findings, started, None if policy is None else policy.short_hash, notes
    )


def decide(findings: list[Finding], alpha: float) -> None:
    """Correct the p-values of the tested findings together, decide each, and order them:
    alerts first, then by kind."""
    tested = [f for f in findings if f.tested]
    adjusted = significance.adjust([f.p_value for f in tested if f.p_value is not None])
    for finding, p in zip(tested, adjusted, strict=True):
        finding.p_adjusted = p
        finding.decide(alpha)
    kinds = {k: i for i, k in enumerate(KINDS)}
    findings.sort(key=lambda f: (_ORDER[f.status], kinds.get(f.kind, 99), f.condition))


def _cascades(rows: list[queries.GroupRow], policy: Policy | None) -> set[str]:
    """Routes whose first tier may be doubted: the policy's cascades, or, without a policy,
    the routes where a first attempt ever was."""
    if policy is not None:
        return {name for name, r in policy.routes.items() if r.strategy == "cascade"}
    return {r.route for r in rows if r.route and r.first_outcome == "low_confidence"}
