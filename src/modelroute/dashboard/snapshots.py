"""The audit and drift results the dashboard shows, computed in the background and stored.

The audit over a million records takes far longer than a page may, so pages only read the
latest stored snapshot (``analysis_snapshots``: kind, computed_at, JSON); ``refresh`` computes
and stores them, and ``SnapshotRefresher`` runs it every ``every_s`` seconds beside a gateway
or ``modelroute ui`` (in a worker thread with its own connection, so pages keep answering).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from modelroute.dashboard.views import Snapshot, SnapshotKind
from modelroute.policy import Policy
from modelroute.records.stores import open_store
from modelroute.records.stores.base import Store

log = logging.getLogger("modelroute.dashboard")

KINDS: tuple[SnapshotKind, ...] = ("audit", "drift")
DAY_S = 86_400.0


@dataclass(frozen=True, slots=True)
class SnapshotSettings:
    audit_days: float = 30.0  # the audit reads this many days back
    drift_current_s: float = DAY_S  # drift compares the last day ...
    drift_baseline_s: float = 7 * DAY_S  # ... with the week before it


async def _audit(store: Store, policy: Policy | None, now: float, s: SnapshotSettings) -> Any:
    import yaml

    from modelroute.analysis.audit import AuditOptions, audit
    from modelroute.analysis.audit_text import render_audit

    data = None if policy is None or policy.text is None else yaml.safe_load(policy.text)
    options = AuditOptions(
        since=now - s.audit_days * DAY_S,
        now=now,
        policy=policy,
        policy_data=data,
        policy_path=None if policy is None else policy.source,
    )
    report = await audit(store, options, "the record store")
    return report.headline(), report.to_dict(), render_audit(report)


async def _drift(store: Store, policy: Policy | None, now: float, s: SnapshotSettings) -> Any:
    from modelroute.analysis.drift import Windows, check
    from modelroute.analysis.drift.report_text import render_report

    windows = Windows.ending(now, s.drift_current_s, s.drift_baseline_s)
    report = await check(store, windows, policy=policy)
    counts = report.counts()
    headline = (
        f"{counts['alert']} alert(s), {counts['ok']} ok, "
        f"{counts['not_enough_data']} without enough data"
    )
    return headline, report.to_dict(), render_report(report)


_COMPUTE = {"audit": _audit, "drift": _drift}


async def refresh(
    store: Store,
    policy: Policy | None = None,
    *,
    kinds: Sequence[SnapshotKind] = KINDS,
    now: float | None = None,
    settings: SnapshotSettings = SnapshotSettings(),
) -> list[Snapshot]:
    """Compute each of ``kinds`` over the store (open) and store the result; returns them."""
    out = []
    for kind in kinds:
        if kind not in _COMPUTE:
            raise ValueError(f"unknown snapshot kind {kind!r}: one of {', '.join(KINDS)}")
        at = time.time() if now is None else now
        started = time.perf_counter()
        headline, data, text = await _COMPUTE[kind](store, policy, at, settings)
        took = time.perf_counter() - started
        encoded = orjson.dumps(data, option=orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY)
        await store.add_snapshot(kind, at, took, headline, encoded.decode(), text)
        out.append(Snapshot(kind, at, took, headline, orjson.loads(encoded), text))
    return out


class SnapshotRefresher:
    """Runs ``refresh`` every ``every_s`` seconds (the first right after ``start``) until
    ``close``, on a store of its own (``store_url``) in a worker thread: the analyses'
    CPU-bound parts never hold the serving loop. A failed run is logged and retried at the
    next interval."""

    def __init__(
        self,
        store_url: str,
        policy: Policy | None = None,
        every_s: float = 600.0,
        *,
        kinds: Sequence[SnapshotKind] = KINDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store_url = store_url
        self.policy = policy
        self.every_s = every_s
        self.kinds = tuple(kinds)
        self.clock = clock
        self.runs = 0  # completed refreshes
        self._task: asyncio.Task[None] | None = None

    async def run_once(self) -> list[Snapshot]:
        found = await asyncio.to_thread(asyncio.run, self._refresh())
        self.runs += 1
        return found

    async def _refresh(self) -> list[Snapshot]:
        store = open_store(self.store_url)
        await store.open()
        try:
            return await refresh(store, self.policy, kinds=self.kinds, now=self.clock())
        finally:
            await store.close()

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="modelroute-snapshots")

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # an analysis bug must not stop the next refresh
                log.exception("dashboard snapshot refresh failed; retrying in %.0f s", self.every_s)
            await asyncio.sleep(self.every_s)

    async def close(self) -> None:
        if self._task is not None:
            task, self._task = self._task, None
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
