"""The dashboard: an ASGI application the gateway mounts at ``/ui`` (``modelroute ui`` runs it
alone), server-rendered pages over the record store, behind the admin token.

- No token configured: the dashboard is off, and every path under ``/ui`` answers 404.
- A token configured: every page answers 401 with a login form unless the request carries the
  token (``Authorization: Bearer``) or the cookie the form sets. The bundled static files
  (the charting library, the stylesheet, the page script) are served to anyone: they are the
  package's own files and hold no data.
- Every script, style and font comes from this application; the Content-Security-Policy tells
  the browser to load nothing from anywhere else.

Pages read the store through ``modelroute.dashboard`` (rollups, not raw rows); nothing here
runs on the gateway's request path.
"""

from __future__ import annotations

import logging
import mimetypes
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, quote

from modelroute.server.asgi import (
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    read_body,
    request_headers,
)
from modelroute.server.ui_auth import AdminToken, login_form, safe_next, session_cookie
from modelroute.server.ui_render import STATIC, Renderer

log = logging.getLogger("modelroute.ui")

PREFIX = "/ui"
_FORM_LIMIT = 16 * 1024
Query = dict[str, str]
PageResult = tuple[int, str]  # status, HTML
Page = Callable[[Query], Awaitable[PageResult]]

_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_PAGE_HEADERS = [
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class Pages(Protocol):
    """The dashboard's pages: a name under the prefix → a handler; ``request`` shows one."""

    def handlers(self) -> dict[str, Page]: ...

    async def request(self, request_id: str, query: Query) -> PageResult: ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...


class DashboardUI:
    """The ``/ui`` sub-application. ``token`` None turns it off (404 everywhere below it)."""

    def __init__(
        self,
        token: str | None,
        pages: Pages | None,
        prefix: str = PREFIX,
        render: Renderer | None = None,
    ) -> None:
        self._token = AdminToken(token) if token else None
        self.pages = pages
        self.prefix = prefix
        self.render = render or Renderer(prefix)

    @property
    def enabled(self) -> bool:
        return self._token is not None and self.pages is not None

    def owns(self, path: str) -> bool:
        return path == self.prefix or path.startswith(self.prefix + "/")

    async def start(self) -> None:
        if self.enabled:
            assert self.pages is not None
            await self.pages.start()

    async def close(self) -> None:
        if self.enabled:
            assert self.pages is not None
            await self.pages.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if not self.enabled or not self.owns(path):
            await _plain(send, 404, _OFF if not self.enabled else "not found\n")
            return
        rest = path[len(self.prefix) :]
        if rest == "":
            await _redirect(send, self.prefix + "/")
        elif rest.startswith("/static/"):
            await _static(send, method, rest.removeprefix("/static/"))
        elif rest == "/login":
            await self._login(scope, receive, send)
        elif rest == "/logout":
            await self._logout(send, method)
        elif not self._allowed(scope):
            await self._denied(send, _target(scope))
        elif method not in ("GET", "HEAD"):
            await _plain(send, 405, f"{method} is not allowed on {path}\n", [(b"allow", b"GET")])
        else:
            await self._page(scope, rest, send)

    def _allowed(self, scope: Scope) -> bool:
        assert self._token is not None
        return self._token.allows(request_headers(scope))

    async def _page(self, scope: Scope, rest: str, send: Send) -> None:
        assert self.pages is not None
        query = _query(scope)
        name = rest.strip("/")
        try:
            if name.startswith("requests/") and len(name) > len("requests/"):
                status, html = await self.pages.request(name.removeprefix("requests/"), query)
            elif (handler := self.pages.handlers().get(name)) is not None:
                status, html = await handler(query)
            else:
                html = self.render.page(
                    "error.html", title="Not found", message=f"No page {rest}.", nav=""
                )
                status = 404
        except Exception as exc:  # a store that is down, a bug: one page fails, not the app
            log.exception("dashboard page %s failed", rest)
            status = 503
            html = self.render.page(
                "error.html",
                title="The page could not be computed",
                message=f"Reading the record store failed ({type(exc).__name__}). "
                "The gateway's log has the details.",
                nav="",
            )
        await send_html(send, status, html)

    async def _denied(self, send: Send, after: str, *, wrong: bool = False) -> None:
        html = self.render.page("login.html", after=after, wrong=wrong, title="Sign in", nav="")
        await send_html(
            send, 401, html, [(b"www-authenticate", b'Bearer realm="modelroute dashboard"')]
        )

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self._token is not None
        if scope["method"] != "POST":
            await self._denied(send, self.prefix + "/")
            return
        try:
            token, after = login_form(await read_body(receive, limit=_FORM_LIMIT))
        except BodyTooLarge:
            await _plain(send, 413, f"the login form is over {_FORM_LIMIT} bytes\n")
            return
        if not self._token.matches(token):
            await self._denied(send, safe_next(after, self.prefix), wrong=True)
            return
        cookie = session_cookie(self._token.session, self.prefix)
        await _redirect(send, safe_next(after, self.prefix), [(b"set-cookie", cookie.encode())])

    async def _logout(self, send: Send, method: str) -> None:
        if method != "POST":
            await _plain(send, 405, "sign out with POST\n", [(b"allow", b"POST")])
            return
        cookie = session_cookie("", self.prefix, max_age=0)
        await _redirect(send, self.prefix + "/", [(b"set-cookie", cookie.encode())])


_OFF = "not found: the dashboard is off (serve it with --admin-token env:NAME)\n"


def _target(scope: Scope) -> str:
    """The page asked for, with its query: where the login form returns to."""
    query = scope.get("query_string", b"").decode("latin-1")
    return str(scope["path"]) + (f"?{query}" if query else "")


def _query(scope: Scope) -> Query:
    raw = scope.get("query_string", b"").decode("latin-1")
    return {key: values[-1] for key, values in parse_qs(raw).items()}


async def send_html(
    send: Send, status: int, html: str, extra: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = html.encode()
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *_PAGE_HEADERS,
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _plain(
    send: Send, status: int, text: str, extra: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    body = text.encode()
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _redirect(send: Send, location: str, extra: Iterable[tuple[bytes, bytes]] = ()) -> None:
    headers = [
        (b"location", quote(location, safe="/?=&%:;,+-_.~").encode()),
        (b"content-length", b"0"),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": 303, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


_TYPES = {".js": "text/javascript", ".css": "text/css", ".txt": "text/plain", "": "text/plain"}


async def _static(send: Send, method: str, name: str) -> None:
    """A file of ``dashboard/static`` (nothing outside it: no ``..``, no absolute path)."""
    if method not in ("GET", "HEAD"):
        await _plain(send, 405, f"{method} is not allowed on static files\n", [(b"allow", b"GET")])
        return
    root = STATIC.resolve()
    target = (root / name).resolve()
    if not name or not target.is_relative_to(root) or not target.is_file():
        await _plain(send, 404, "not found\n")
        return
    body = Path(target).read_bytes()
    kind = _TYPES.get(target.suffix) or mimetypes.guess_type(target.name)[0] or "text/plain"
    headers = [
        (b"content-type", f"{kind}; charset=utf-8".encode()),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"public, max-age=3600"),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body if method == "GET" else b""})
