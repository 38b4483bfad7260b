"""The admin API, behind the admin token (``Authorization: Bearer TOKEN``; no cookie, so no
page can make a browser call it):

- ``GET /admin/keys`` (``?all=1``: revoked too), ``POST /admin/keys`` (201 with the new key,
  shown only in this answer), ``DELETE /admin/keys/{key id or name}``;
- ``GET /admin/policy``: the hashes serving (and the canary's share);
- ``POST /admin/policy``: a new policy (YAML as the body, or JSON ``{"policy": YAML}``);
- ``POST /admin/policy/reload``: re-read the policy file(s), as SIGHUP does;
- ``POST /admin/policy/canary``: ``{"policy": YAML, "percent": 5, "sticky": "key"}``;
  ``DELETE /admin/policy/canary``: roll it back; ``POST /admin/policy/promote``.

A policy that does not load is 422 with its located problems; the current one serves on.
Errors are OpenAI-style JSON; none repeats a key or the token.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qs, unquote

import orjson

from modelroute.errors import PolicyError
from modelroute.keys import KeyRefused, KeyRing, KeySpec, KeyStore
from modelroute.lifecycle import PolicyLifecycle
from modelroute.server.asgi import Receive, Scope, Send, read_body, request_headers, send_json
from modelroute.server.errors import HttpError
from modelroute.server.ui_auth import AdminToken

log = logging.getLogger("modelroute.admin")
PREFIX = "/admin/"


class AdminApi:
    def __init__(
        self,
        token: AdminToken | None,
        keys: tuple[KeyStore, KeyRing] | None,
        lifecycle: PolicyLifecycle | None,
    ) -> None:
        self.token = token
        self.keys = keys
        self.lifecycle = lifecycle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            status, body = await self._dispatch(scope, receive)
        except Refused as refused:
            error = refused.error
            await send_json(send, error.status, error.openai(), error.headers.items())
            return
        await send_json(send, status, body)

    async def _dispatch(self, scope: Scope, receive: Receive) -> tuple[int, Any]:
        if self.token is None:
            raise _error(404, "admin_off", "the admin API is off (serve with --admin-token)")
        scheme, _, credential = request_headers(scope).get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not self.token.matches(credential.strip()):
            raise Refused(HttpError(
                401, "invalid_admin_token", "the admin API needs Authorization: Bearer "
                "ADMIN_TOKEN", {}, {"www-authenticate": "Bearer"},
            ))  # fmt: skip
        method, path = scope["method"], scope["path"].removeprefix(PREFIX)
        if path == "keys" or path.startswith("keys/"):
            return await self._keys(method, path, scope, receive)
        if path == "policy" or path.startswith("policy/"):
            return await self._policy(method, path, receive)
        raise _error(404, "not_found", f"no admin endpoint {scope['path']}")

    async def _keys(
        self, method: str, path: str, scope: Scope, receive: Receive
    ) -> tuple[int, Any]:
        if self.keys is None:
            raise _error(404, "keys_off", "API keys need a record store (--store)")
        store, ring = self.keys
        if path == "keys" and method == "GET":
            query = parse_qs(scope.get("query_string", b"").decode())
            every = query.get("all", ["0"])[0] not in ("0", "false", "")
            return 200, {"keys": [r.to_dict() for r in await store.all() if every or r.active]}
        if path == "keys" and method == "POST":
            try:
                spec = KeySpec.from_json(orjson.loads(await read_body(receive)))
                secret, record = await store.create(spec)
            except (ValueError, KeyRefused) as exc:
                raise _error(400, "invalid_key_request", str(exc)) from None
            ring.apply(record)
            log.warning("API key %s (%s) created through the admin API", record.key_id, spec.name)
            return 201, {"key": secret, **record.to_dict()}
        if path.startswith("keys/") and method == "DELETE":
            try:
                record = await store.revoke(unquote(path.removeprefix("keys/")))
            except KeyRefused as exc:
                raise _error(404, "unknown_key", str(exc)) from None
            ring.apply(record)
            log.warning("API key %s (%s) revoked", record.key_id, record.spec.name)
            return 200, record.to_dict()
        raise _error(405, "method_not_allowed", f"{method} is not allowed on /admin/{path}")

    async def _policy(self, method: str, path: str, receive: Receive) -> tuple[int, Any]:
        lifecycle = self.lifecycle
        if lifecycle is None:
            raise _error(404, "policy_off", "this gateway has no policy lifecycle")
        action = (method, path)
        try:
            if action == ("GET", "policy"):
                return 200, lifecycle.status()
            if action == ("POST", "policy"):
                lifecycle.replace_policy(_policy_text(await read_body(receive)), "<admin>")
            elif action == ("POST", "policy/reload"):
                lifecycle.reload_files()
            elif action == ("POST", "policy/canary"):
                data = _json_object(await read_body(receive))
                percent = data.get("percent")
                if isinstance(percent, bool) or not isinstance(percent, int | float):
                    raise ValueError("'percent' is required: the canary's share, 0 to 100")
                text = data.get("policy")
                if not isinstance(text, str):
                    raise ValueError("'policy' is required: the canary policy's YAML")
                lifecycle.start_canary(
                    text, float(percent), data.get("sticky") or "key", "<canary>"
                )
            elif action == ("DELETE", "policy/canary"):
                lifecycle.stop_canary()
            elif action == ("POST", "policy/promote"):
                lifecycle.promote()
            else:
                raise _error(405, "method_not_allowed", f"{method} is not allowed on /admin/{path}")
        except PolicyError as exc:
            raise Refused(HttpError(
                422, "invalid_policy", "the policy was refused; the current one keeps serving",
                {"problems": [_problem(p) for p in exc.problems]}, {},
            )) from None  # fmt: skip
        except (ValueError, OSError) as exc:
            raise _error(400, "invalid_policy_request", str(exc)) from None
        return 200, lifecycle.status()


class Refused(Exception):
    """An admin request refused: the error it is answered with."""

    def __init__(self, error: HttpError) -> None:
        super().__init__(error.message)
        self.error = error


def _error(status: int, code: str, message: str) -> Refused:
    return Refused(HttpError(status, code, message, {}, {}))


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"the body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def _policy_text(raw: bytes) -> str:
    """A body that is JSON ``{"policy": YAML}``, or the YAML itself."""
    if raw.lstrip().startswith(b"{"):
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, dict) and isinstance(data.get("policy"), str):
            return str(data["policy"])
    return raw.decode("utf-8")


def _problem(problem: Any) -> dict[str, Any]:
    return {
        "file": problem.file, "line": problem.line, "column": problem.column,
        "path": problem.path, "message": problem.message, "hint": problem.hint,
        "severity": problem.severity, "text": problem.render(),
    }  # fmt: skip
