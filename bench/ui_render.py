"""The dashboard's pages over HTTP: each page's time from request to last byte (uvicorn on a
real socket, httpx as client, the admin token sent), beside the time of the ``Dashboard``
reads behind it, so what rendering and HTTP add is the difference. Run it on a store made by
``bench/dashboard.py`` (1 million records):

    python bench/ui_render.py --store /tmp/dash-1m.db --policy /tmp/dash-1m-policy.yaml

Pages are asked as of the newest record (the synthetic store's clock), ``--repeat`` times
each; the median and the slowest are printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import uvicorn

from modelroute.policy import load_policy
from modelroute.server.ui import PREFIX, DashboardUI
from modelroute.server.ui_pages import DashboardPages
from modelroute.server.ui_query import window
from modelroute.server.ui_render import Renderer

TOKEN = "bench-token"


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _timed(call: Callable[[], Awaitable[Any]], repeat: int) -> tuple[float, float]:
    took = []
    for _ in range(repeat):
        started = time.perf_counter()
        await call()
        took.append((time.perf_counter() - started) * 1000)
    return statistics.median(took), max(took)


def _pages(pages: DashboardPages, now: float, newest: str, route: str) -> list[tuple[str, Any]]:
    """(path, the Dashboard reads behind that page)."""
    d = pages.dashboard

    def span(name: str) -> tuple[float, float, int]:
        w = window({"range": name}, now)
        return w.since, w.until, w.step

    out: list[tuple[str, Any]] = []
    for name in ("1h", "24h", "7d", "30d"):
        out.append((f"/ui/?range={name}", lambda n=name: d.overview(*span(n))))
    for name in ("24h", "30d"):
        out.append((f"/ui/routes?range={name}", lambda n=name: d.routes(*span(n)[:2])))
    out += [
        ("/ui/requests", lambda: d.search(limit=50)),
        (f"/ui/requests?route={route}", lambda: d.search(route=route, limit=50)),
        (f"/ui/requests/{newest}", lambda: d.request(newest)),
        ("/ui/audit", d.audit_latest),
        ("/ui/drift", d.drift_latest),
        ("/ui/policy", d.policies),
    ]
    return out


async def main(store_url: str, policy_path: str | None, repeat: int) -> None:
    policy = load_policy(policy_path) if policy_path else None
    pages = DashboardPages(store_url, policy, Renderer(PREFIX), snapshots_every_s=None)
    await pages.start()
    store = pages.dashboard.store
    count = await store.count()
    (last,) = await store.read_sql("SELECT MAX(started_at) FROM requests")
    [(newest, route)] = await store.read_sql(
        "SELECT request_id, route FROM requests ORDER BY started_at DESC LIMIT 1"
    )
    now = float(last[0])
    pages.clock = lambda: now
    port = _port()
    config = uvicorn.Config(DashboardUI(TOKEN, pages), host="127.0.0.1", port=port,
                            lifespan="off", log_level="warning", loop="none")  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    headers = {"authorization": f"Bearer {TOKEN}"}
    print(f"{count:,} records in {store.dialect}; {repeat} runs per page\n")
    print("| page | HTTP median ms | HTTP max ms | Dashboard reads median ms | bytes |")
    print("|---|---:|---:|---:|---:|")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", headers=headers) as c:
            for path, reads in _pages(pages, now, str(newest), str(route)):
                response = await c.get(path)
                assert response.status_code == 200, (path, response.status_code)
                http_med, http_max = await _timed(lambda p=path: c.get(p), repeat)
                data_med, _ = await _timed(reads, repeat)
                shown = path.replace(str(newest), "ID")
                print(f"| `{shown}` | {http_med:.0f} | {http_max:.0f} | {data_med:.0f} | "
                      f"{len(response.content):,} |")  # fmt: skip
    finally:
        server.should_exit = True
        await task
        await pages.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", required=True, help="SQLite path or postgresql:// URL")
    parser.add_argument("--policy", help="the policy the store was made with")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.repeat < 1:
        sys.exit("--repeat must be at least 1")
    asyncio.run(main(args.store, args.policy, args.repeat))
