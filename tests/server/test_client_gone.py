"""Knowing the client left: the gateway's protocol says so in the scope, and without it a
watcher on ``receive`` does. Both over real sockets."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import uvicorn

from modelroute.serve import HTTP_PROTOCOL
from modelroute.server.asgi import CLIENT_GONE, Disconnect, Receive, Scope, Send
from tests.gateway.harness import free_port

REQUEST = b"POST /stream HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}"


class _Relay:
    """An ASGI app that starts a stream, then waits until its ``Disconnect`` says the client
    has gone (or gives up after 5 s)."""

    def __init__(self) -> None:
        self.offered: bool | None = None
        self.noticed = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        await receive()
        self.offered = CLIENT_GONE in (scope.get("extensions") or {})
        watcher = Disconnect(receive, scope)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"data: one\n\n", "more_body": True})
        try:
            for _ in range(500):
                if watcher.gone:
                    self.noticed.set()
                    return
                await asyncio.sleep(0.01)
        finally:
            watcher.stop()


@contextlib.asynccontextmanager
async def _serve(app: Any, http: str) -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, loop="none", http=http, lifespan="off",
        log_level="warning",
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


async def _leave_after_first_event(port: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(REQUEST)
    await writer.drain()
    assert b"data: one" in await reader.readuntil(b"data: one\n\n")
    writer.close()
    await writer.wait_closed()


async def test_the_gateway_protocol_says_when_the_client_left() -> None:
    app = _Relay()
    async with _serve(app, HTTP_PROTOCOL) as port:
        await _leave_after_first_event(port)
        await asyncio.wait_for(app.noticed.wait(), 5)
    assert app.offered is True


async def test_without_the_extension_a_watcher_on_receive_notices() -> None:
    app = _Relay()
    async with _serve(app, "httptools") as port:  # uvicorn's own protocol: no extension
        await _leave_after_first_event(port)
        await asyncio.wait_for(app.noticed.wait(), 5)
    assert app.offered is False
