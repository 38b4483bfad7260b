"""The dashboard in a real browser: headless Chromium (Debian's, driven by Playwright; no
browser download) against a gateway whose store was filled by real traffic through it.

Every page is loaded; without the token each answers 401 and shows the login form; signing in
through the form opens them. The numbers shown are checked against the raw rows; a request
that fell back is followed from the explorer to its decision; every request the browser makes
is recorded and none may leave the gateway's host; a screenshot of each page is saved in the
test's output folder (and, with ``MODELROUTE_DASHBOARD_SCREENSHOT=path``, the overview's there
too: the README's picture).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from modelroute.pricing import usd
from modelroute.records.stores.base import Store

from .support import (
    PAGES,
    TOKEN,
    Site,
    Truth,
    dashboard_site,
    fell_back,
    send_traffic,
    truth,
    wait_for_records,
)

CHROMIUM = Path(os.environ.get("MODELROUTE_CHROMIUM", "/usr/bin/chromium"))
IN_CI = os.environ.get("CI", "").lower() == "true"


def _require_chromium() -> None:
    """Without Chromium (or Playwright) the test skips, except under CI=true: CI installs
    Debian's chromium (``.ci/run``), and must not go green without having run it."""
    problem = None
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        problem = "playwright is not installed (pip install -e '.[dev]')"
    if problem is None and not CHROMIUM.exists():
        problem = f"no Chromium at {CHROMIUM} (apt-get install -y chromium)"
    if problem is not None:
        if IN_CI:
            pytest.fail(problem)
        pytest.skip(problem)


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    _require_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            # as root (CI containers) Chromium's sandbox cannot start
            args=["--no-sandbox"] if os.geteuid() == 0 else [],
        )
        try:
            yield launched
        finally:
            await launched.close()


async def _seeded(site: Site) -> tuple[Store, list[str]]:
    from modelroute.dashboard.snapshots import refresh

    ids = await send_traffic(site)
    store = await wait_for_records(site.store_url, len(ids))
    await refresh(store, site.policy)  # the audit and drift pages show a stored result
    return store, ids


async def test_every_page_in_chromium(browser: Any, tmp_path: Path) -> None:
    async with dashboard_site(str(tmp_path / "records.db"), tmp_path / "spool") as site:
        store, ids = await _seeded(site)
        try:
            facts = await truth(store)
            fallback = await fell_back(store, ids)
            context = await browser.new_context(viewport={"width": 1360, "height": 900})
            requested: list[str] = []
            context.on("request", lambda request: requested.append(request.url))
            page = await context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await _refused_then_signed_in(page, site)
            shots = tmp_path / "screenshots"
            shots.mkdir()
            await _overview(page, site, facts, shots)
            await _routes(page, site, facts, shots)
            await _explorer_to_decision(page, site, facts, fallback, shots)
            await _the_rest(page, site, shots)
            await context.close()
        finally:
            await store.close()
    assert not errors, errors
    gateway = urlsplit(site.url).netloc
    assert requested and {urlsplit(url).netloc for url in requested} == {gateway}, requested
    assert all(url.startswith(site.url) for url in requested)
    names = sorted(p.name for p in shots.iterdir())
    assert names == sorted(
        ["overview.png", "routes.png", "requests.png", "request.png", "audit.png",
         "drift.png", "policy.png", "login.png"]
    )  # fmt: skip
    if target := os.environ.get("MODELROUTE_DASHBOARD_SCREENSHOT"):
        shutil.copyfile(shots / "overview.png", target)


async def _refused_then_signed_in(page: Any, site: Site) -> None:
    for path in PAGES:
        response = await page.goto(site.url + path)
        assert response.status == 401, path
        assert await page.locator("input[name=token]").count() == 1
    await page.fill("input[name=token]", "not-the-token")
    await page.click("button[type=submit]")
    assert await page.locator("[role=alert]").inner_text() == "That token is not the admin token."
    await page.fill("input[name=token]", TOKEN)
    async with page.expect_navigation():
        await page.click("form.login button[type=submit]")
    assert page.url == site.url + "/ui/policy"  # back where the form was shown
    cookies = await page.context.cookies()
    [cookie] = [c for c in cookies if c["name"] == "modelroute_ui"]
    assert cookie["httpOnly"] and cookie["value"] != TOKEN


async def _overview(page: Any, site: Site, facts: Truth, shots: Path) -> None:
    response = await page.goto(site.url + "/ui/?range=1h")
    assert response.status == 200
    text = page.locator
    assert await text("#total-requests").inner_text() == f"{facts.requests:,}"
    assert await text("#total-spend").inner_text() == usd(facts.spend_usd)
    assert await text("#total-error-rate").inner_text() == f"{facts.error_rate * 100:.1f}%"
    for route, n in facts.by_route.items():
        row = text(f'#by-route tr[data-key="{route or ""}"] td:nth-child(2)')
        assert await row.inner_text() == f"{n:,}", route
    for model, n in facts.by_model.items():
        row = text(f'#by-model tr[data-key="{model or ""}"] td:nth-child(2)')
        assert await row.inner_text() == f"{n:,}", model
    # every chart drawn by the vendored uPlot, from the page's own data
    charts = text("[data-chart]")
    assert await charts.count() == 8
    assert await text("[data-chart][data-drawn] canvas").count() == 8
    await page.screenshot(path=str(shots / "overview.png"), full_page=True)


async def _routes(page: Any, site: Site, facts: Truth, shots: Path) -> None:
    assert (await page.goto(site.url + "/ui/routes?range=1h")).status == 200
    for route, n in facts.by_route.items():
        section = page.locator(f'section[id="route-{route or "(no route)"}"] .route-requests')
        assert await section.inner_text() == f"{n:,}", route
    # the policy's view of each route: its candidates, as the quickstart lists them
    chat = page.locator('section[id="route-chat"] table.candidates')
    assert "small" in await chat.inner_text() and "backup" in await chat.inner_text()
    await page.screenshot(path=str(shots / "routes.png"), full_page=True)


async def _explorer_to_decision(
    page: Any, site: Site, facts: Truth, record: dict[str, Any], shots: Path
) -> None:
    assert (await page.goto(site.url + "/ui/requests?limit=100")).status == 200
    first = page.locator("#requests tr[data-request-id]").first
    assert await first.get_attribute("data-request-id") == facts.newest
    assert await page.locator("#requests tr[data-request-id]").count() == facts.requests
    await page.screenshot(path=str(shots / "requests.png"), full_page=True)
    # the search form: one route, then the request that fell back, by its id
    await page.select_option("select[name=route]", "support-triage")
    async with page.expect_navigation():
        await page.click("form.filters button[type=submit]")
    routes = await page.locator("#requests tr[data-request-id] td:nth-child(3)").all_inner_texts()
    assert routes and set(routes) == {"support-triage"}
    assert len(routes) == facts.by_route["support-triage"]
    await page.goto(site.url + "/ui/requests?limit=100")
    async with page.expect_navigation():
        await page.click(f'a[href="/ui/requests/{record["request_id"]}"]')
    assert page.url == f"{site.url}/ui/requests/{record['request_id']}"
    final = await page.locator("#final-model").inner_text()
    assert final.startswith(record["final_model"]) and record["final_reported_model"] in final
    attempts = page.locator("#attempts tr:has(td)")
    assert await attempts.count() == len(record["attempts"])
    outcomes = await page.locator("#attempts tr:has(td) td:nth-child(5)").all_inner_texts()
    assert outcomes == [str(a["outcome"]) for a in record["attempts"]]
    candidates = await page.locator("#candidates tr:has(td) td:first-child").all_inner_texts()
    kept = [c["model"] for tier in record["decision"]["tiers"] for c in tier]
    assert [c.split(" ")[0] for c in candidates] == kept
    await page.screenshot(path=str(shots / "request.png"), full_page=True)


async def _the_rest(page: Any, site: Site, shots: Path) -> None:
    for name in ("audit", "drift"):
        assert (await page.goto(f"{site.url}/ui/{name}")).status == 200
        assert await page.locator("#headline").inner_text()
        await page.screenshot(path=str(shots / f"{name}.png"), full_page=True)
    assert (await page.goto(site.url + "/ui/policy")).status == 200
    assert await page.locator("#policy-in-force").inner_text() == site.policy.hash
    await page.screenshot(path=str(shots / "policy.png"), full_page=True)
    await page.click("button:has-text('Sign out')")
    await page.wait_for_url(site.url + "/ui/")
    assert await page.locator("input[name=token]").count() == 1
    await page.screenshot(path=str(shots / "login.png"), full_page=True)
