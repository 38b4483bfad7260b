"""Who may see the dashboard: whoever holds the admin token.

A browser signs in once through the login form, which sets an HttpOnly cookie; a script sends
``Authorization: Bearer TOKEN`` with each request. The cookie does not hold the token itself
but a keyed digest of it, so a cookie read from a browser profile does not reveal the token
(changing the token invalidates every cookie). Every comparison is constant-time. Nothing here
logs, and no error message repeats what the caller sent.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import parse_qs

COOKIE = "modelroute_ui"
_SESSION_LABEL = b"modelroute dashboard session v1"


class AdminToken:
    """The admin token, and the session cookie value derived from it."""

    __slots__ = ("_session", "_token")

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the admin token is empty")
        self._token = token.encode()
        self._session = hmac.new(self._token, _SESSION_LABEL, hashlib.sha256).hexdigest().encode()

    def __repr__(self) -> str:  # never shows the token, in a traceback or a debugger
        return "AdminToken(<redacted>)"

    def matches(self, offered: str) -> bool:
        return hmac.compare_digest(offered.encode(), self._token)

    @property
    def session(self) -> str:
        return self._session.decode()

    def allows(self, headers: dict[str, str]) -> bool:
        """A request carries the token (``Authorization: Bearer``) or the session cookie."""
        scheme, _, credential = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and self.matches(credential.strip()):
            return True
        cookie = cookie_value(headers.get("cookie", ""), COOKIE)
        return cookie is not None and hmac.compare_digest(cookie.encode(), self._session)


def cookie_value(header: str, name: str) -> str | None:
    """One cookie's value from a ``Cookie`` header (the first of that name)."""
    for part in header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key == name:
            return value
    return None


def session_cookie(value: str, path: str, *, max_age: int | None = None) -> str:
    """A ``Set-Cookie`` value: HttpOnly, SameSite=Strict, scoped to the dashboard's path."""
    parts = [f"{COOKIE}={value}", f"Path={path}", "HttpOnly", "SameSite=Strict"]
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def login_form(body: bytes) -> tuple[str, str]:
    """The token and the page to return to, from the login form's urlencoded body."""
    fields = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    token = (fields.get("token") or [""])[0]
    after = (fields.get("next") or [""])[0]
    return token, after


def safe_next(after: str, prefix: str) -> str:
    """Where to send the browser after signing in: a page of the dashboard, never elsewhere."""
    if after.startswith(prefix + "/") and not after.startswith("//") and "\\" not in after:
        return after
    return prefix + "/"
