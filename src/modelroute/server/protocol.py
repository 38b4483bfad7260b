"""uvicorn's httptools protocol with its writes coalesced: one send per event-loop turn.

uvicorn writes a response's status line and headers as soon as the app starts the response,
then the body in a second write: two system calls (and, on loopback, two deliveries) for every
JSON answer. Writes made in the same turn of the loop are joined here and leave in one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from modelroute.server.asgi import CLIENT_GONE


class CoalescingTransport:
    """Wraps a transport; ``write`` gathers until the loop's next turn, everything else passes
    straight through (flow control still acts on the real transport)."""

    __slots__ = ("_loop", "_pending", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not data:
            return
        if not self._pending:
            self._loop.call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        pending = self._pending
        if not pending:
            return
        self._pending = []
        if not self._transport.is_closing():
            self._transport.write(pending[0] if len(pending) == 1 else b"".join(pending))

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + sum(map(len, self._pending))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GatewayProtocol(HttpToolsProtocol):
    """uvicorn's protocol with coalesced writes, and a ``CLIENT_GONE`` scope extension so a
    relay can ask whether the client is still there without a watcher task per stream."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.client_gone = False
        # ASGI extensions map a name to a dict of what the extension offers.
        self._extensions: dict[str, dict[object, object]] = {
            CLIENT_GONE: {"check": self._client_gone}
        }
        coalescing = CoalescingTransport(transport, self.loop)
        super().connection_made(coalescing)  # type: ignore[arg-type]

    def on_headers_complete(self) -> None:
        self.scope["extensions"] = self._extensions
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self.client_gone = True
        super().connection_lost(exc)

    def _client_gone(self) -> bool:
        return self.client_gone
