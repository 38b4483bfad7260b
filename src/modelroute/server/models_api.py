"""``GET /v1/models`` and ``GET /v1/models/{id}``: the policy's routes, aliases and models.

OpenAI's shape by default; Anthropic's (``type: model``, ``display_name``, ``created_at``,
paged with ``limit``, ``after_id`` and ``before_id``) when the caller speaks Anthropic, as the
anthropic SDK does by sending ``anthropic-version`` and ``x-api-key``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from modelroute.policy import Policy
from modelroute.server.asgi import Scope, Send, request_headers, send_json
from modelroute.server.errors import HttpError

MODEL_PREFIX = "/v1/models/"
# The policy says nothing of when a model appeared: both shapes say the epoch.
_EPOCH = "1970-01-01T00:00:00Z"
_DEFAULT_LIMIT, _MAX_LIMIT = 20, 1000


def speaks_anthropic(headers: Mapping[str, str]) -> bool:
    return "anthropic-version" in headers or "x-api-key" in headers


def openai_entries(policy: Policy) -> dict[str, dict[str, Any]]:
    """Every name a client may send as ``model``, in order: routes, aliases, then models."""
    entries: dict[str, dict[str, Any]] = {}
    for name, route in policy.names.items():
        entries[name] = {
            "id": name,
            "object": "model",
            "created": 0,
            "owned_by": "modelroute",
            "route": route.name,
        }
    for m in policy.models.values():
        entries[m.name] = {
            "id": m.name,
            "object": "model",
            "created": 0,
            "owned_by": m.provider,
            "model_id": m.model_id,
        }
    return entries


def _anthropic_entry(entry: dict[str, Any]) -> dict[str, Any]:
    name = entry["id"]
    if "route" not in entry:
        display = f"{name} ({entry['model_id']} via {entry['owned_by']})"
    elif entry["route"] == name:
        display = f"{name} (route)"
    else:
        display = f"{name} (alias of route {entry['route']})"
    return {"type": "model", "id": name, "display_name": display, "created_at": _EPOCH}


def _page(ids: list[str], query: dict[str, list[str]]) -> tuple[list[str], bool]:
    """The ids of one page and whether more lie in the direction paged; ``ValueError``."""
    raw = query.get("limit", [str(_DEFAULT_LIMIT)])[-1]
    limit = int(raw) if raw.isdigit() else 0
    if not 1 <= limit <= _MAX_LIMIT:
        raise ValueError(f"limit: must be an integer from 1 to {_MAX_LIMIT}")
    before, after = query.get("before_id", [None])[-1], query.get("after_id", [None])[-1]
    for key, value in (("before_id", before), ("after_id", after)):
        if value is not None and value not in ids:
            raise ValueError(f"{key}: no model {value!r}")
    if before is not None:
        end = ids.index(before)
        return ids[max(0, end - limit) : end], end - limit > 0
    start = ids.index(after) + 1 if after is not None else 0
    return ids[start : start + limit], start + limit < len(ids)


async def list_models(policy: Policy, scope: Scope, send: Send) -> None:
    entries = openai_entries(policy)
    if not speaks_anthropic(request_headers(scope)):
        await send_json(send, 200, {"object": "list", "data": list(entries.values())})
        return
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    try:
        ids, more = _page(list(entries), query)
    except ValueError as exc:
        error = HttpError(400, "invalid_request", str(exc), {}, {})
        await send_json(send, 400, error.anthropic())
        return
    page = {
        "data": [_anthropic_entry(entries[name]) for name in ids],
        "has_more": more,
        "first_id": ids[0] if ids else None,
        "last_id": ids[-1] if ids else None,
    }
    await send_json(send, 200, page)


async def get_model(policy: Policy, scope: Scope, send: Send) -> None:
    name = scope["path"][len(MODEL_PREFIX) :]
    anthropic = speaks_anthropic(request_headers(scope))
    entry = openai_entries(policy).get(name)
    if entry is None:
        message = f"The model {name!r} does not exist: it names no route, alias or model"
        error = HttpError(404, "model_not_found", message, {}, {})
        await send_json(send, 404, error.anthropic() if anthropic else error.openai())
        return
    await send_json(send, 200, _anthropic_entry(entry) if anthropic else entry)
