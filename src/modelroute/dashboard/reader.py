"""``Dashboard``: every page's data from one store, in a few indexed queries each.

Charts and per-route figures read the rollups (per-minute and per-hour aggregates the stores
keep with each batch written), never the raw rows; the explorer reads rows by index, a page
at a time; the audit and drift pages read stored snapshots. Bad arguments raise
``ValueError`` with a message fit to show the caller.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import orjson

from modelroute.dashboard import rollup_reads as rr
from modelroute.dashboard.detail import OUTCOME_COLUMNS, detail
from modelroute.dashboard.route_views import route_view
from modelroute.dashboard.views import (
    Overview,
    PolicyText,
    PolicyVersion,
    RequestDetail,
    RequestRow,
    Routes,
    SearchPage,
    Series,
    Snapshot,
    SnapshotKind,
    SpendShare,
)
from modelroute.outcomes import aggregate as outcome_aggregates
from modelroute.outcomes.aggregate import Aggregate
from modelroute.policy import Policy
from modelroute.records.stores.base import Store

MAX_LIMIT = 500
MAX_BUCKETS = 5_000
_ROW_COLUMNS = (
    "request_id, started_at, route, final_model, final_reported_model, status, latency_ms, "
    "cost_usd, decision_reason, policy_hash"
)
_SNAPSHOT = (
    "SELECT kind, computed_at, took_s, headline, data, text FROM analysis_snapshots "
    "WHERE kind = {p} ORDER BY computed_at DESC, id DESC LIMIT 1"
)


def default_step(since: float, until: float, buckets: int = 240) -> int:
    """A step for a chart of about ``buckets`` points over the range: whole minutes, or whole
    hours from 2 hours up."""
    raw = max(60.0, (until - since) / buckets)
    if raw >= 7200:
        return math.ceil(raw / 3600) * 3600
    return math.ceil(raw / 60) * 60


def _range(since: float, until: float) -> None:
    if not (math.isfinite(since) and math.isfinite(until)):
        raise ValueError("since and until must be finite times (unix seconds)")
    if until <= since:
        raise ValueError(f"until ({until}) must be after since ({since})")


class Dashboard:
    """Reads one open store. ``policy``: the policy in force, for the route views and to mark
    the version in force; without one, routes show what the records say only."""

    def __init__(
        self,
        store: Store,
        policy: Policy | None = None,
        *,
        quality_ttl_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.policy = policy
        # Measured quality (every outcome, bootstrap intervals) is the costliest read of the
        # Routes page and changes slowly: kept this long, as the gateway's own refresh does.
        self.quality_ttl_s = quality_ttl_s
        self.clock = clock
        self._quality: tuple[float, list[Aggregate]] | None = None

    async def _aggregates(self) -> list[Aggregate]:
        now = self.clock()
        if self._quality is None or now - self._quality[0] >= self.quality_ttl_s:
            self._quality = (now, await outcome_aggregates.load(self.store, "route"))
        return self._quality[1]

    # --- Overview ---------------------------------------------------------------------------

    async def overview(self, since: float, until: float, step: int = 60) -> Overview:
        """Volume, spend, p50/p95 latency, error and fallback rates per ``step`` seconds
        (60 or a multiple of it) over [since, until): in total, by route, by final model.
        Buckets start at multiples of ``step`` (UTC), the first one at or before ``since``."""
        _range(since, until)
        if not isinstance(step, int) or step < 60 or step % 60:
            raise ValueError(f"step must be whole minutes in seconds (60, 300, ...), not {step}")
        start = int(since // step) * step
        n = math.ceil((until - start) / step)
        if n > MAX_BUCKETS:
            raise ValueError(
                f"{n} buckets of {step} s: at most {MAX_BUCKETS}; use a larger step "
                f"(e.g. {default_step(since, until)})"
            )
        lines = await rr.series(self.store, start, until, step, n)
        buckets = tuple(float(start + i * step) for i in range(n))
        by_route = _series_list(lines.routes, lines.by_route, buckets)
        spent = sum(s.total.spend_usd for s in by_route)
        shares = sorted(
            (
                SpendShare(s.key, s.total.requests, s.total.spend_usd,
                           s.total.spend_usd / spent if spent > 0 else None)
                for s in by_route
            ),
            key=lambda x: (-x.spend_usd, -x.requests, x.route or ""),
        )  # fmt: skip
        return Overview(
            since=since,
            until=until,
            step=step,
            buckets=buckets,
            total=_series(None, lines.total, buckets),
            by_route=by_route,
            by_model=_series_list(lines.models, lines.by_model, buckets),
            spend_share=tuple(shares),
        )

    # --- Routes -----------------------------------------------------------------------------

    async def routes(self, since: float, until: float) -> Routes:
        """Per route over [since, until): the policy's view of it, the model mix, measured
        quality per model (outcomes of all time, with intervals; read at most every
        ``quality_ttl_s``), cost per request, and how often each rejection reason removed each
        candidate."""
        _range(since, until)
        figures = await rr.by_key(self.store, since, until)
        rejected = await rr.rejections(self.store, since, until)
        aggregates = await self._aggregates()
        per_route: dict[str | None, dict[str | None, rr.Figures]] = {}
        for (route, model), f in figures.items():
            per_route.setdefault(route, {})[model] = f
        if self.policy is not None:
            for name in self.policy.routes:
                per_route.setdefault(name, {})
        views = []
        for route, models in per_route.items():
            mine = {(c, why): n for (r, c, why), n in rejected.items() if r == route}
            quality = [a for a in aggregates if a.key == route]
            views.append(route_view(route, models, mine, quality, self.policy))
        views.sort(key=lambda v: (-v.requests, v.route or ""))
        return Routes(
            since=since,
            until=until,
            policy_hash=None if self.policy is None else self.policy.hash,
            routes=tuple(views),
        )

    # --- Decision explorer ------------------------------------------------------------------

    async def search(
        self,
        *,
        route: str | None = None,
        model: str | None = None,
        status: str | None = None,
        request_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> SearchPage:
        """Requests newest first, narrowed by each argument given; ``before`` is a previous
        page's ``next_before``. ``limit`` is 1 to ``MAX_LIMIT``."""
        if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
            raise ValueError(f"limit must be 1 to {MAX_LIMIT}, not {limit!r}")
        p = rr.placeholders(self.store)
        where: list[str] = []
        params: list[Any] = []

        def add(condition: str, *values: Any) -> None:
            marks = [p(len(params) + i + 1) for i in range(len(values))]
            params.extend(values)
            where.append(condition.format(*marks))

        for column, value in (("route", route), ("final_model", model), ("status", status),
                              ("request_id", request_id)):  # fmt: skip
            if value is not None:
                add(f"{column} = {{}}", value)
        if since is not None:
            add("started_at >= {}", float(since))
        if until is not None:
            add("started_at < {}", float(until))
        if before is not None:
            add("(started_at, request_id) < ({}, {})", *_cursor(before))
        sql = (
            f"SELECT {_ROW_COLUMNS} FROM requests WHERE {' AND '.join(where) or '1 = 1'} "
            f"ORDER BY started_at DESC, request_id DESC LIMIT {limit + 1}"
        )
        rows = [_row(r) for r in await self.store.read_sql(sql, params)]
        more = len(rows) > limit
        rows = rows[:limit]
        last = rows[-1] if more else None
        return SearchPage(
            rows=tuple(rows),
            next_before=None if last is None else f"{last.started_at!r},{last.request_id}",
        )

    async def request(self, request_id: str) -> RequestDetail | None:
        """One request in full, with its feedback and outcomes; None when not stored."""
        record = await self.store.get(request_id)
        if record is None:
            return None
        p = rr.placeholders(self.store)
        outcomes = await self.store.read_sql(
            f"SELECT {OUTCOME_COLUMNS} FROM outcomes WHERE request_id = {p(1)} "
            "ORDER BY created_at, outcome_id",
            (request_id,),
        )
        return detail(record, outcomes)

    # --- Policy -----------------------------------------------------------------------------

    async def policies(self) -> tuple[PolicyVersion, ...]:
        """Policy versions seen in the records or stored, the latest served first (then the
        ones stored but never served, newest first)."""
        seen = await self.store.read_sql(
            "SELECT policy_hash, version, first_seen, last_seen, requests FROM policy_traffic"
        )
        stored = {
            h: (v, at)
            for h, v, at in await self.store.read_sql(
                "SELECT policy_hash, version, stored_at FROM policies"
            )
        }
        in_force = None if self.policy is None else self.policy.hash
        out = [
            PolicyVersion(h, v or stored.get(h, (None, 0))[0], first, last, int(n),
                          h in stored, h == in_force)
            for h, v, first, last, n in seen
        ]  # fmt: skip
        served = {v.hash for v in out}
        out += [
            PolicyVersion(h, v, None, None, 0, True, h == in_force)
            for h, (v, _) in sorted(stored.items(), key=lambda kv: -kv[1][1])
            if h not in served
        ]
        out.sort(key=lambda v: -(v.last_seen if v.last_seen is not None else -math.inf))
        return tuple(out)

    async def policy_text(self, policy_hash: str) -> PolicyText | None:
        """A stored policy's text, for a diff; None when it was never stored."""
        p = rr.placeholders(self.store)
        rows = await self.store.read_sql(
            "SELECT policy_hash, version, source, text, stored_at FROM policies "
            f"WHERE policy_hash = {p(1)}",
            (policy_hash,),
        )
        if not rows:
            return None
        h, version, source, text, stored_at = rows[0]
        return PolicyText(h, version, source, text, float(stored_at))

    # --- Audit and drift --------------------------------------------------------------------

    async def audit_latest(self) -> Snapshot | None:
        """The latest stored audit (``snapshots.refresh`` computes them); None before one."""
        return await self._snapshot("audit")

    async def drift_latest(self) -> Snapshot | None:
        """The latest stored drift check; None before one."""
        return await self._snapshot("drift")

    async def _snapshot(self, kind: SnapshotKind) -> Snapshot | None:
        p = rr.placeholders(self.store)
        rows = await self.store.read_sql(_SNAPSHOT.format(p=p(1)), (kind,))
        if not rows:
            return None
        _, computed_at, took_s, headline, data, text = rows[0]
        loaded = orjson.loads(data) if isinstance(data, str | bytes) else data
        return Snapshot(kind, float(computed_at), float(took_s), headline, loaded, text)


def _series(key: str | None, sums: np.ndarray, buckets: Sequence[float]) -> Series:
    whole = rr.points(sums.sum(axis=0, keepdims=True), buckets[:1] or (0.0,))[0]
    return Series(key, rr.points(sums, buckets), whole)


def _series_list(
    keys: list[str | None], sums: np.ndarray, buckets: Sequence[float]
) -> tuple[Series, ...]:
    out = [_series(key, sums[i], buckets) for i, key in enumerate(keys)]
    out.sort(key=lambda s: (-s.total.requests, s.key or ""))
    return tuple(out)


def _cursor(before: str) -> tuple[float, str]:
    at, sep, request_id = before.partition(",")
    try:
        when = float(at)
    except ValueError:
        when = math.nan
    if not sep or not request_id or not math.isfinite(when):
        raise ValueError(f"bad page cursor {before!r}: pass a previous page's next_before")
    return when, request_id


def _row(r: Sequence[Any]) -> RequestRow:
    request_id, started_at, route, model, reported, status, latency, cost, reason, policy = r
    served = orjson.loads(reason)[6] if reason else None
    return RequestRow(
        request_id=request_id,
        started_at=float(started_at),
        route=route,
        final_model=model,
        final_reported_model=reported,
        status=str(status),
        latency_ms=float(latency),
        cost_usd=float(cost),
        served=served,
        policy_hash=policy,
    )
