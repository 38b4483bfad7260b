"""A few ASGI primitives, kept small: the gateway's hot path has no framework in it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_BODY = 32 * 1024 * 1024


class BodyTooLarge(Exception):
    pass


async def read_body(receive: Receive, limit: int = MAX_BODY) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ConnectionResetError("client disconnected")
        body = message.get("body", b"")
        size += len(body)
        if size > limit:
            raise BodyTooLarge(f"request body over {limit} bytes")
        chunks.append(body)
        if not message.get("more_body"):
            return b"".join(chunks)


def request_headers(scope: Scope) -> dict[str, str]:
    """Header names lower-cased (ASGI already does); later duplicates win."""
    return {k.decode("latin-1"): v.decode("latin-1") for k, v in scope.get("headers", ())}


def _raw_headers(
    content_type: bytes, extra: Iterable[tuple[str, str]]
) -> list[tuple[bytes, bytes]]:
    headers = [(b"content-type", content_type)]
    headers.extend((k.encode("latin-1"), v.encode("latin-1", "replace")) for k, v in extra)
    return headers


# The official SDKs read a response's request id from these (openai: x-request-id,
# anthropic: request-id); both carry the record's id when the response has a record.
_RECORD_ID = b"x-modelroute-request-id"


def add_request_ids(headers: list[tuple[bytes, bytes]], fresh: Callable[[], str]) -> None:
    """Add ``x-request-id`` and ``request-id``: the record's id, else ``fresh()``."""
    value = next((v for k, v in headers if k == _RECORD_ID), None)
    if value is None:
        value = fresh().encode()
    headers += ((b"x-request-id", value), (b"request-id", value))


async def send_json(
    send: Send, status: int, payload: Any, headers: Iterable[tuple[str, str]] = ()
) -> None:
    body = orjson.dumps(payload)
    raw = _raw_headers(b"application/json", headers)
    raw.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def send_text(
    send: Send, status: int, text: str, content_type: bytes = b"text/plain"
) -> None:
    body = text.encode()
    raw = _raw_headers(content_type, [("content-length", str(len(body)))])
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})


async def start_stream(send: Send, headers: Iterable[tuple[str, str]]) -> None:
    raw = _raw_headers(b"text/event-stream", [("cache-control", "no-cache"), *headers])
    await send({"type": "http.response.start", "status": 200, "headers": raw})


# A scope extension our server protocol offers: ``{"check": callable}``, True once the client's
# connection is gone. With it a relay asks after each write instead of keeping a task on
# ``receive`` for every stream.
CLIENT_GONE = "modelroute.client_gone"


class Disconnect:
    """Tells a relay whether the client went away while we stream to it.

    Under the gateway's own protocol (``server/protocol.py``) the scope carries
    ``CLIENT_GONE`` and nothing runs beside the relay. Under any other ASGI server a task
    watches ``receive``: after the response is complete ``receive`` answers
    ``http.disconnect`` (ASGI says so, and uvicorn wakes a pending call), so the watcher
    normally just ends. Cancelling it instead would leave a cancelled task and its traceback
    as cyclic garbage for every stream, which the garbage collector then has to find.
    """

    def __init__(self, receive: Receive, scope: Scope | None = None) -> None:
        offered = (scope.get("extensions") or {}).get(CLIENT_GONE) if scope is not None else None
        probe: Callable[[], bool] | None = (
            offered.get("check") if isinstance(offered, dict) else None
        )
        self._task: asyncio.Task[None] | None = None
        if probe is None:
            event = asyncio.Event()
            probe = event.is_set
            self._task = asyncio.ensure_future(_watch(receive, event))
        self._probe = probe

    @property
    def gone(self) -> bool:
        return self._probe()

    def stop(self) -> None:
        task = self._task
        if task is not None and not task.done():  # let its wake-up from the final send run
            asyncio.get_running_loop().call_soon(_cancel_if_pending, task)


async def _watch(receive: Receive, event: asyncio.Event) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            event.set()
            return


def _cancel_if_pending(task: asyncio.Task[None]) -> None:
    if not task.done():  # a server that does not wake it: do not leave it waiting
        task.cancel()
