"""The dashboard's door: off without an admin token, 401 on every page without it, a login
form that sets an HttpOnly cookie (not the token), ``Authorization: Bearer`` for scripts, and
the bundled static files (nothing else) served to anyone."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from modelroute.server.ui_auth import AdminToken, safe_next
from modelroute.server.ui_render import STATIC

from .support import PAGES, TOKEN, dashboard_site, send_traffic


async def test_without_an_admin_token_the_dashboard_is_off(tmp_path: Path) -> None:
    async with (
        dashboard_site(str(tmp_path / "r.db"), tmp_path / "spool", token=None) as site,
        site.client(token=None) as http,
    ):
        for path in (*PAGES, "/ui", "/ui/static/ui.css", "/ui/login"):
            response = await http.get(path)
            assert response.status_code == 404, path
            assert "--admin-token" in response.text
        assert (await http.get("/healthz")).status_code == 200


async def test_every_page_answers_401_without_the_token(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with dashboard_site(str(tmp_path / "r.db"), tmp_path / "spool") as site:
        [request_id, *_] = await send_traffic(site)
        pages = (*PAGES, f"/ui/requests/{request_id}", "/ui/policy?a=x&b=y", "/ui/nothing")
        wrong = {
            "none": {},
            "wrong bearer": {"authorization": "Bearer " + TOKEN[:-1] + "x"},
            "token as basic": {"authorization": f"Basic {TOKEN}"},
            "token as cookie": {"cookie": f"modelroute_ui={TOKEN}"},
            "wrong cookie": {"cookie": "modelroute_ui=" + "0" * 64},
        }
        async with site.client(token=None) as http:
            for what, headers in wrong.items():
                for path in pages:
                    response = await http.get(path, headers=headers)
                    assert response.status_code == 401, (what, path)
                    assert response.headers["www-authenticate"].startswith("Bearer")
                    assert 'name="token"' in response.text and TOKEN not in response.text
                    # no data before signing in: the id only where the form returns to
                    assert response.text.count(request_id) == path.count(request_id)
            response = await http.post("/ui/logout")
            assert response.status_code == 303  # signing out needs no token
        async with site.client() as http:  # the right token: every page opens
            for path in PAGES:
                assert (await http.get(path)).status_code == 200, path
    assert TOKEN not in caplog.text


async def test_the_login_form_sets_an_http_only_cookie(tmp_path: Path) -> None:
    async with (
        dashboard_site(str(tmp_path / "r.db"), tmp_path / "spool") as site,
        site.client(token=None) as http,
    ):
        form = await http.get("/ui/routes?range=1h")
        assert form.status_code == 401
        assert 'name="next" value="/ui/routes?range=1h"' in form.text
        refused = await http.post("/ui/login", data={"token": "guess", "next": "/ui/routes"})
        assert refused.status_code == 401 and "not the admin token" in refused.text
        assert "set-cookie" not in refused.headers
        signed = await http.post("/ui/login", data={"token": TOKEN, "next": "/ui/routes"})
        assert signed.status_code == 303 and signed.headers["location"] == "/ui/routes"
        cookie = signed.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/ui" in cookie
        assert TOKEN not in cookie
        assert (await http.get("/ui/routes")).status_code == 200  # the client kept it
        out = await http.post("/ui/logout")
        assert out.status_code == 303 and "Max-Age=0" in out.headers["set-cookie"]
        assert (await http.get("/ui/routes")).status_code == 401
        away = await http.post("/ui/login", data={"token": TOKEN, "next": "//elsewhere.example/"})
        assert away.headers["location"] == "/ui/"
        huge = await http.post("/ui/login", data={"token": "x" * 20_000})
        assert huge.status_code == 413


async def test_pages_load_nothing_from_elsewhere_and_static_files_are_the_package_files(
    tmp_path: Path,
) -> None:
    async with (
        dashboard_site(str(tmp_path / "r.db"), tmp_path / "spool") as site,
        site.client(token=None) as http,
    ):
        page = await http.get("/ui/", headers={"authorization": f"Bearer {TOKEN}"})
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src 'self'" in csp
        assert page.headers["cache-control"] == "no-store"
        for name in ("vendor/uplot/uPlot.iife.min.js", "vendor/uplot/LICENSE", "charts.js"):
            response = await http.get(f"/ui/static/{name}")
            assert response.status_code == 200, name
            assert response.content == (STATIC / name).read_bytes()
        js = await http.get("/ui/static/charts.js")
        assert js.headers["content-type"].startswith("text/javascript")
        for escape in ("..%2F..%2Fserver%2Fui.py", "..%2Ftemplates%2Fbase.html", "", "nope"):
            response = await http.get(f"/ui/static/{escape}")
            assert response.status_code == 404, escape
        assert (await http.post("/ui/static/ui.css")).status_code == 405
        assert (
            await http.post("/ui/", headers={"authorization": f"Bearer {TOKEN}"})
        ).status_code == 405


def test_the_cookie_is_a_digest_of_the_token_and_redirects_stay_on_the_dashboard() -> None:
    token = AdminToken(TOKEN)
    assert TOKEN not in token.session and TOKEN not in repr(token)
    assert token.session != AdminToken(TOKEN + "x").session
    assert token.allows({"cookie": f"other=1; modelroute_ui={token.session}"})
    assert not token.allows({"authorization": "Bearer "})
    for bad in ("https://x.example/", "//x.example/ui/", "/ui", "/uix/", "/ui\\..\\x", ""):
        assert safe_next(bad, "/ui") == "/ui/", bad
    assert safe_next("/ui/requests?route=chat", "/ui") == "/ui/requests?route=chat"
    with pytest.raises(ValueError):
        AdminToken("")
