"""Announcing drift alerts exactly once per condition: a log line, the gauge, a webhook.

The conditions already raised are kept in the store (``drift_alerts``): a check raises the
conditions it alerts on that are not kept yet, and only those it raised are announced. So a
condition is announced once across repeated checks, across the gateway's workers and
``modelroute drift`` alike. A kept condition that a later check finds holding no more (its
test ran and did not alert, or it was not found at all) is cleared, and announced again if it
recurs; one the check had too little data to decide stays kept.

The webhook gets one POST per new alert: JSON with ``text`` (one line, which chat webhooks
show as is), ``alert`` (the finding: test, p-values, effect, both sample sizes, evidence) and
the windows. A webhook that fails is retried a few times, then the failure is logged: the
condition stays raised (an announcement is never repeated, at most lost, and then logged).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson

from modelroute.analysis.drift.check import Report
from modelroute.analysis.drift.findings import Finding
from modelroute.analysis.drift.gauge import DriftGauge
from modelroute.records.stores.base import Store

log = logging.getLogger("modelroute.drift")

_WEBHOOK_TRIES = 3


class Announcer:
    def __init__(
        self,
        *,
        webhook: str | None = None,
        gauge: DriftGauge | None = None,
        timeout_s: float = 5.0,
        retry_s: float = 1.0,
    ) -> None:
        self.webhook = webhook
        self.gauge = gauge
        self.timeout_s = timeout_s
        self.retry_s = retry_s

    async def announce(self, store: Store, report: Report) -> list[Finding]:
        """Raise, clear and announce the report's conditions; returns the alerts announced
        now (those no earlier check raised)."""
        active = {f.condition: f for f in report.alerts}
        undecided = {f.condition for f in report.findings if f.status == "not_enough_data"}
        kept = await store.raised_alerts()
        fresh = {k: (f.kind, _json(f)) for k, f in active.items() if k not in kept}
        raised = await store.raise_alerts(fresh)
        cleared = [k for k in kept if k not in active and k not in undecided]
        await store.clear_alerts(cleared)
        new = [f for f in report.alerts if f.condition in raised]
        for finding in new:
            log.warning("drift alert: %s %s: %s", finding.kind, _subject(finding), finding.summary)
        if self.gauge is not None:
            self.gauge.show(report.alerts, cleared, report.checked_at)
        if self.webhook is not None and new:
            await self._post_all(new, report)
        return new

    async def _post_all(self, new: list[Finding], report: Report) -> None:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            for finding in new:
                await self._post(session, finding, report)

    async def _post(self, session: Any, finding: Finding, report: Report) -> None:
        import aiohttp

        assert self.webhook is not None
        body = {
            "text": f"modelroute drift alert: {finding.kind} {_subject(finding)}: "
            f"{finding.summary}",
            "alert": finding.to_dict(),
            "windows": report.windows.to_dict(),
            "checked_at": report.checked_at,
            "policy": report.policy,
        }
        data = orjson.dumps(body, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        problem = ""
        for attempt in range(_WEBHOOK_TRIES):
            if attempt:
                await asyncio.sleep(self.retry_s * attempt)
            try:
                headers = {"content-type": "application/json"}
                async with session.post(self.webhook, data=data, headers=headers) as response:
                    if response.status < 300:
                        return
                    problem = f"HTTP {response.status}"
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                problem = repr(exc)
        log.error(
            "drift webhook failed %d times (%s); the alert %s was not delivered",
            _WEBHOOK_TRIES,
            problem,
            finding.condition,
        )


def _subject(f: Finding) -> str:
    return " ".join(f"{k}={v}" for k, v in f.subject.items() if v is not None) or "all traffic"


def _json(f: Finding) -> str:
    return orjson.dumps(f.to_dict(), option=orjson.OPT_SERIALIZE_NUMPY).decode()
