"""The stored responses' endpoints, as the Responses API serves them:
``GET /v1/responses/{id}`` (the ``response`` object), ``DELETE /v1/responses/{id}`` (the
deleted-object shape; with ``stream=true`` its event stream, replayed from the object and
resumed after ``starting_after``: ``responses_replay``) and
``GET /v1/responses/{id}/input_items`` (a list, newest first by default, paged by ``after``,
``limit`` and ``order``). An id that is unknown, expired, deleted
or another API key's is a 404 in OpenAI's error format.

``with_previous`` is what ``previous_response_id`` means on ``POST /v1/responses``: the
stored conversation goes before the new input, so any model, bridged or native, can be sent
the whole of it (the model whose upstream keeps the previous response itself is sent the id
instead: ``responses_api``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs

from modelroute.cache import StoreUnreachable
from modelroute.server.access import IDENTITY
from modelroute.server.asgi import Scope, Send, send_json, start_stream
from modelroute.server.errors import HttpError
from modelroute.server.responses_checks import BridgeError
from modelroute.server.responses_replay import replay
from modelroute.server.responses_store import ResponseStore, StoredResponse

PREFIX = "/v1/responses/"
_ITEMS = "/input_items"
_MAX_LIMIT, _DEFAULT_LIMIT = 100, 20


def owner_of(scope: Scope) -> str | None:
    """The key id of the caller's API key; None for a caller without one."""
    identity = scope.get(IDENTITY)
    key_id = getattr(identity, "key_id", None)
    return key_id if isinstance(key_id, str) else None


def is_stored_path(path: str) -> bool:
    """``/v1/responses/{id}`` or ``/v1/responses/{id}/input_items``."""
    if not path.startswith(PREFIX):
        return False
    response_id = path.removeprefix(PREFIX).removesuffix(_ITEMS)
    return bool(response_id) and "/" not in response_id


async def with_previous(
    store: ResponseStore, body: dict[str, Any], owner: str | None
) -> tuple[dict[str, Any], StoredResponse | None]:
    """``body`` with the conversation of its ``previous_response_id`` before its input (and
    the id left out), and that stored response; ``body`` unchanged without one.
    ``BridgeError`` (400 ``previous_response_not_found``, as the API answers) when there is
    no such response."""
    previous_id = body.get("previous_response_id")
    if not isinstance(previous_id, str) or not previous_id:
        return body, None  # absent, or a wrong type the translation refuses
    try:
        previous = await store.get(previous_id, owner)
    except StoreUnreachable as exc:
        raise BridgeError(f"{exc}: try again later.", None, "store_unavailable", 503) from None
    if previous is None:
        raise BridgeError(
            f"Previous response with id '{previous_id}' not found.",
            "previous_response_id",
            "previous_response_not_found",
        )
    given = body.get("input")
    new = [{"role": "user", "content": given}] if isinstance(given, str) else given
    if not isinstance(new, list):
        return body, None  # the translation says what is wrong with it
    out = {key: value for key, value in body.items() if key != "previous_response_id"}
    out["input"] = [*previous.context(), *new]
    return out, previous


async def handle_stored(store: ResponseStore, scope: Scope, send: Send) -> None:
    """``GET``/``DELETE`` of ``/v1/responses/{id}`` and ``GET`` of its ``input_items``; a
    503 while the store cannot be reached."""
    try:
        await _stored(store, scope, send)
    except StoreUnreachable as exc:
        message = f"{exc}: try again later."
        await _error(send, HttpError(503, "store_unavailable", message, {}, {}))


async def _stored(store: ResponseStore, scope: Scope, send: Send) -> None:
    rest = scope["path"].removeprefix(PREFIX)
    listing = rest.endswith(_ITEMS)
    response_id = rest.removesuffix(_ITEMS)
    method = scope["method"]
    allowed = ("GET",) if listing else ("GET", "DELETE")
    if method not in allowed:
        message = f"{method} is not allowed on {scope['path']}"
        headers = {"allow": ", ".join(allowed)}
        await _error(send, HttpError(405, "method_not_allowed", message, {}, headers))
        return
    owner = owner_of(scope)
    if method == "DELETE":
        if not await store.delete(response_id, owner):
            await _error(send, _not_found(response_id))
            return
        await send_json(send, 200, {"id": response_id, "object": "response", "deleted": True})
        return
    query = parse_qs(scope.get("query_string", b"").decode())
    entry = await store.get(response_id, owner)
    if entry is None:
        await _error(send, _not_found(response_id))
        return
    try:
        if not listing:
            if _last(query, "stream") == "true":
                events = replay(entry.response, _starting_after(query))
                await start_stream(send, ())
                await send({"type": "http.response.body", "body": events})
                return
            await send_json(send, 200, entry.response)
            return
        page = items_page(entry, query)
    except BridgeError as exc:
        details = {"param": exc.param} if exc.param else {}
        await _error(send, HttpError(400, exc.code, str(exc), details, {}))
        return
    await send_json(send, 200, page)


def items_page(entry: StoredResponse, query: dict[str, list[str]]) -> dict[str, Any]:
    """A page of the entry's input items in the API's list shape."""
    order = _last(query, "order") or "desc"
    if order not in ("asc", "desc"):
        raise BridgeError(
            f"Invalid value for 'order': '{order}'. Supported values are: 'asc' and 'desc'.",
            "order",
        )
    limit_text = _last(query, "limit") or str(_DEFAULT_LIMIT)
    limit = int(limit_text) if limit_text.isdigit() else 0
    if not 1 <= limit <= _MAX_LIMIT:
        raise BridgeError(
            f"Invalid 'limit': expected an integer between 1 and {_MAX_LIMIT}.", "limit"
        )
    items = entry.input_items if order == "asc" else entry.input_items[::-1]
    after = _last(query, "after")
    if after is not None:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise BridgeError(f"Invalid 'after': no input item '{after}'.", "after")
        items = items[ids.index(after) + 1 :]
    data = items[:limit]
    return {
        "object": "list",
        "data": data,
        "first_id": data[0].get("id") if data else None,
        "last_id": data[-1].get("id") if data else None,
        "has_more": len(items) > limit,
    }


def _starting_after(query: dict[str, list[str]]) -> int:
    """The sequence number a replay resumes after (-1: from the first event)."""
    given = _last(query, "starting_after")
    if given is None:
        return -1
    if not given.isdigit():
        raise BridgeError(
            f"Invalid 'starting_after': expected a non-negative integer, got '{given}'.",
            "starting_after",
        )
    return int(given)


def _last(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[-1] if values else None


def _not_found(response_id: str) -> HttpError:
    return HttpError(404, "not_found", f"Response with id '{response_id}' not found.", {}, {})


async def _error(send: Send, error: HttpError) -> None:
    await send_json(send, error.status, error.openai(), error.headers.items())
