"""Every dashboard page over HTTP, under uvicorn on a real socket, against SQLite and
PostgreSQL stores filled by real traffic through the gateway: the figures shown are the raw
rows' (aggregated here directly), the explorer pages through every request and filters them,
one request shows its decision and attempts, the audit and drift pages show the latest stored
snapshot (and say so when there is none), the policy page diffs two stored versions."""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path
from urllib.parse import urlencode

import httpx

from modelroute import load_policy_text
from modelroute.dashboard.snapshots import refresh
from modelroute.pricing import usd

from .support import (
    QUICKSTART,
    Site,
    Truth,
    dashboard_site,
    fell_back,
    send_traffic,
    text_of,
    truth,
    wait_for_records,
)

ROW = re.compile(r'<tr data-request-id="([^"]+)">')


def _cell(html: str, table: str, key: str, column: int) -> str:
    """One cell of a row (``data-key``) of a table, its tags stripped."""
    body = html.split(f'id="{table}"', 1)[1].split("</table>", 1)[0]
    row = re.search(rf'<tr data-key="{re.escape(key)}">(.*?)</tr>', body, re.S)
    assert row, f"no row {key!r} in #{table}"
    cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(1), re.S)
    return re.sub(r"<[^>]+>", "", cells[column]).strip()


async def test_pages_show_what_the_store_holds(store_target: Path | str, tmp_path: Path) -> None:
    url = str(store_target)
    async with dashboard_site(url, tmp_path / "spool") as site:
        ids = await send_traffic(site)
        store = await wait_for_records(url, len(ids))
        try:
            facts = await truth(store)
            record = await fell_back(store, ids)
            async with site.client() as http:
                await _overview(http, facts)
                await _routes(http, facts)
                await _explorer(http, facts, ids)
                await _one_request(http, record)
                await _snapshots(http, site, store)
                await _policies(http, site, store)
        finally:
            await store.close()


async def _overview(http: httpx.AsyncClient, facts: Truth) -> None:
    page = await http.get("/ui/", params={"range": "1h"})
    assert page.status_code == 200
    html = page.text
    assert text_of(html, "total-requests") == f"{facts.requests:,}"
    assert text_of(html, "total-spend") == usd(facts.spend_usd)
    assert text_of(html, "total-error-rate") == f"{facts.error_rate * 100:.1f}%"
    for route, n in facts.by_route.items():
        assert _cell(html, "by-route", route or "", 1) == f"{n:,}"
    for model, n in facts.by_model.items():
        assert _cell(html, "by-model", model or "", 1) == f"{n:,}"
    # the charts' data: one value per bucket, the requests of all buckets adding up
    data = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html)
    assert data is not None
    import orjson

    charts = {c["id"]: c for c in orjson.loads(data.group(1))}
    volume = charts["volume-route"]
    assert sum(sum(s["values"]) for s in volume["series"]) == facts.requests
    assert all(len(s["values"]) == len(volume["x"]) == 60 for s in volume["series"])
    assert (await http.get("/ui/", params={"range": "2y"})).status_code == 400


async def _routes(http: httpx.AsyncClient, facts: Truth) -> None:
    html = (await http.get("/ui/routes", params={"range": "1h"})).text
    shown = dict(
        re.findall(
            r'<section class="route" id="route-([^"]+)">.*?"route-requests">([\d,]+)<', html, re.S
        )
    )
    assert shown == {(r or "(no route)"): f"{n:,}" for r, n in facts.by_route.items()}
    assert "cheapest_qualified" in html and "cascade" in html  # the policy's strategies


async def _explorer(http: httpx.AsyncClient, facts: Truth, ids: list[str]) -> None:
    first = await http.get("/ui/requests", params={"limit": 25})
    rows = ROW.findall(first.text)
    assert len(rows) == 25 and rows[0] == facts.newest
    older = re.search(r'<a rel="next" href="/ui/requests(\?[^"]+)"', first.text)
    assert older is not None
    rest = ROW.findall((await http.get("/ui/requests" + older.group(1).replace("&amp;", "&"))).text)
    assert sorted(rows + rest) == sorted(ids) and not set(rows) & set(rest)
    rejected = ROW.findall((await http.get("/ui/requests", params={"status": "rejected"})).text)
    assert len(rejected) == facts.by_route[None] == 3
    triage = ROW.findall(
        (await http.get("/ui/requests", params={"route": "support-triage", "limit": 100})).text
    )
    assert len(triage) == facts.by_route["support-triage"]
    one = ROW.findall((await http.get("/ui/requests", params={"request_id": ids[5]})).text)
    assert one == [ids[5]]
    for bad in ({"limit": "7"}, {"since": "yesterday"}):
        assert (await http.get("/ui/requests", params=bad)).status_code == 400


async def _one_request(http: httpx.AsyncClient, record: dict[str, object]) -> None:
    page = await http.get(f"/ui/requests/{record['request_id']}")
    assert page.status_code == 200
    html = page.text
    assert text_of(html, "final-model").startswith(str(record["final_model"]))
    attempts = html.split('id="attempts"', 1)[1].split("</table>", 1)[0]
    assert attempts.count("<tr><td") == len(record["attempts"])  # type: ignore[arg-type]
    assert "failed" in attempts and "server_error" in attempts
    assert (await http.get("/ui/requests/0000-none")).status_code == 404


async def _snapshots(http: httpx.AsyncClient, site: Site, store: object) -> None:
    for name in ("audit", "drift"):
        page = await http.get(f"/ui/{name}")
        assert page.status_code == 200 and "has been computed yet" in page.text
    snapshots = await refresh(store, site.policy)  # type: ignore[arg-type]
    for snapshot in snapshots:
        page = await http.get(f"/ui/{snapshot.kind}")
        assert text_of(page.text, "headline") == snapshot.headline


async def _policies(http: httpx.AsyncClient, site: Site, store: object) -> None:
    html = (await http.get("/ui/policy")).text
    assert text_of(html, "policy-in-force") == site.policy.hash
    text = QUICKSTART.read_text().replace('"quickstart-2026-11"', '"quickstart-2026-12"')
    newer = load_policy_text(text, str(QUICKSTART))
    await store.remember_policy(newer.hash, newer.version, newer.source, text)  # type: ignore[attr-defined]
    query = urlencode({"a": site.policy.hash, "b": newer.hash})
    diff = unescape((await http.get(f"/ui/policy?{query}")).text)
    assert '>-version: "quickstart-2026-11"<' in diff
    assert '>+version: "quickstart-2026-12"<' in diff
    missing = await http.get("/ui/policy", params={"a": site.policy.hash, "b": "sha256:none"})
    assert missing.status_code == 400 and "No stored text" in missing.text
