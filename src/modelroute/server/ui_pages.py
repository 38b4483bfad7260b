"""The dashboard's pages: each reads one or two ``Dashboard`` methods and renders a template.

Pages compute no figure themselves (the ``Dashboard`` does, from rollups); they pick the time
window, the filters, and the words shown when there is nothing to show.
"""

from __future__ import annotations

import asyncio
import difflib
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from modelroute.records.record import RequestStatus
from modelroute.server.ui import Page, PageResult, Query
from modelroute.server.ui_charts import overview_charts
from modelroute.server.ui_query import RANGES, BadQuery, Filters, as_input, window
from modelroute.server.ui_render import Renderer

if TYPE_CHECKING:
    from modelroute.dashboard import Dashboard
    from modelroute.dashboard.snapshots import SnapshotRefresher
    from modelroute.policy import Policy
    from modelroute.records.stores import Store

STATUSES = tuple(status.value for status in RequestStatus)


class DashboardPages:
    """The pages over one record store (opened by ``start``, its own connection: the
    gateway's records writer is not shared). ``snapshots_every_s``: how often the audit and
    drift snapshots are recomputed in the background (None: never here, another process
    does)."""

    def __init__(
        self,
        store_url: str,
        policy: Policy | None,
        render: Renderer,
        *,
        snapshots_every_s: float | None = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store_url = store_url
        self.policy = policy
        self.render = render
        self.snapshots_every_s = snapshots_every_s
        self.clock = clock
        self._store: Store | None = None
        self._dashboard: Dashboard | None = None
        self._refresher: SnapshotRefresher | None = None

    async def start(self) -> None:
        from modelroute.dashboard import Dashboard
        from modelroute.dashboard.snapshots import SnapshotRefresher
        from modelroute.records.stores import open_store

        self._store = store = open_store(self.store_url)
        await store.open()
        policy = self.policy
        if policy is not None and policy.text is not None:  # its text, for the policy page
            await store.remember_policy(policy.hash, policy.version, policy.source, policy.text)
        self._dashboard = Dashboard(store, policy)
        if self.snapshots_every_s is not None:
            self._refresher = SnapshotRefresher(self.store_url, policy, self.snapshots_every_s)
            await self._refresher.start()

    async def close(self) -> None:
        if self._refresher is not None:
            await self._refresher.close()
        if self._store is not None:
            await self._store.close()

    @property
    def dashboard(self) -> Dashboard:
        assert self._dashboard is not None, "DashboardPages.start() was not awaited"
        return self._dashboard

    def handlers(self) -> dict[str, Page]:
        return {
            "": self.overview,
            "routes": self.routes,
            "requests": self.explorer,
            "audit": self.audit,
            "drift": self.drift,
            "policy": self.policies,
        }

    def _page(self, template: str, status: int = 200, **context: Any) -> PageResult:
        return status, self.render.page(template, **context)

    def _bad(self, nav: str, problem: BadQuery | ValueError) -> PageResult:
        return self._page("error.html", 400, title="Bad request", message=str(problem), nav=nav)

    async def overview(self, query: Query) -> PageResult:
        try:
            span = window(query, self.clock())
        except BadQuery as exc:
            return self._bad("overview", exc)
        view = await self.dashboard.overview(span.since, span.until, span.step)
        return self._page(
            "overview.html", title="Overview", nav="overview", view=view, span=span,
            ranges=RANGES, charts=overview_charts(view),
        )  # fmt: skip

    async def routes(self, query: Query) -> PageResult:
        try:
            span = window(query, self.clock())
        except BadQuery as exc:
            return self._bad("routes", exc)
        view = await self.dashboard.routes(span.since, span.until)
        return self._page(
            "routes.html", title="Routes", nav="routes", view=view, span=span, ranges=RANGES
        )

    async def explorer(self, query: Query) -> PageResult:
        try:
            filters = Filters.parse(query)
            found = await self.dashboard.search(
                route=filters.route, model=filters.model, status=filters.status,
                request_id=filters.request_id, since=filters.since, until=filters.until,
                limit=filters.limit, before=filters.before,
            )  # fmt: skip
        except ValueError as exc:
            return self._bad("requests", exc)
        older = None
        if found.next_before is not None:
            older = "?" + urlencode(filters.params(before=found.next_before))
        newest = "?" + urlencode(filters.params(before=None)) if filters.before else None
        return self._page(
            "explorer.html", title="Decisions", nav="requests", found=found, filters=filters,
            older=older, newest=newest, statuses=STATUSES, as_input=as_input,
            routes=self._route_names(),
        )  # fmt: skip

    def _route_names(self) -> list[str]:
        return sorted(self.policy.routes) if self.policy is not None else []

    async def request(self, request_id: str, query: Query) -> PageResult:
        detail = await self.dashboard.request(request_id)
        if detail is None:
            return self._page(
                "error.html", 404, title="Request not found", nav="requests",
                message=f"No request {request_id} in the record store.",
            )  # fmt: skip
        return self._page("request.html", title=f"Request {request_id}", nav="requests", r=detail)

    async def audit(self, query: Query) -> PageResult:
        latest = await self.dashboard.audit_latest()
        return self._page(
            "audit.html", title="Audit", nav="audit", snap=latest, every=self.snapshots_every_s
        )

    async def drift(self, query: Query) -> PageResult:
        latest = await self.dashboard.drift_latest()
        return self._page(
            "drift.html", title="Drift", nav="drift", snap=latest, every=self.snapshots_every_s
        )

    async def policies(self, query: Query) -> PageResult:
        versions = await self.dashboard.policies()
        old, new = query.get("a"), query.get("b")
        diff: list[str] | None = None
        problem = None
        if old and new:
            texts = await asyncio.gather(
                self.dashboard.policy_text(old), self.dashboard.policy_text(new)
            )
            missing = [h for h, t in zip((old, new), texts, strict=True) if t is None]
            if missing:
                problem = f"No stored text for policy {', '.join(missing)}."
            else:
                a, b = texts
                assert a is not None and b is not None
                diff = list(
                    difflib.unified_diff(
                        a.text.splitlines(), b.text.splitlines(),
                        f"{a.hash[:12]} ({a.version or 'unversioned'})",
                        f"{b.hash[:12]} ({b.version or 'unversioned'})", lineterm="",
                    )
                )  # fmt: skip
        in_force = next((v for v in versions if v.in_force), None)
        return self._page(
            "policy.html", 400 if problem else 200, title="Policy", nav="policy",
            versions=versions, in_force=in_force, a=old, b=new, diff=diff, problem=problem,
        )  # fmt: skip
