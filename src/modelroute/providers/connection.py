"""One keep-alive HTTP/1.1 connection to an upstream, and the response read over it.

A relay's cost per request is mostly its HTTP client, so this one does little: the request
leaves in one write, the response is parsed by llhttp (``httptools``) as bytes arrive, and the
body is handed over in the pieces the network delivered, with no stream objects between.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterator
from typing import Any, cast

import httptools

from modelroute.types import UpstreamError

# Past this much unread body, stop reading from the socket until the consumer catches up.
HIGH_WATER = 1024 * 1024
# Body of a response that declares neither a length nor chunking ends when the connection does.
_NO_BODY_STATUSES = frozenset({204, 304})


class Connection(asyncio.Protocol):
    """An asyncio protocol for one connection; carries one exchange at a time."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpResponseParser(self)
        self.closed = False
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self.begin()

    def begin(self) -> None:
        """Forget the previous exchange (the connection is about to carry a new one)."""
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body: list[bytes] = []
        self.buffered = 0
        self.headers_done = False
        self.complete = False
        self.keep_alive = False
        self.error: UpstreamError | None = None
        self._decoder: Any = None
        self._until_close = False
        self._paused = False

    # --- asyncio.Protocol -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is no subclass

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self._fail(UpstreamError(cause="bad_http", detail=f"unparseable response: {exc}"))
            self.abort()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.complete:
            return
        if self.headers_done and self._until_close and exc is None:
            self.on_message_complete()  # the close is the end of the body
            return
        cause = "reset" if isinstance(exc, ConnectionResetError) else "disconnected"
        where = "mid-response" if self.headers_done else "before answering"
        self._fail(UpstreamError(cause=cause, detail=f"the upstream closed the connection {where}"))

    # --- httptools callbacks ----------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        self.status = status
        headers = self.headers
        if headers.get("content-encoding") in ("gzip", "deflate"):
            self._decoder = zlib.decompressobj(wbits=zlib.MAX_WBITS | 32)  # gzip or zlib
        self._until_close = (
            "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "")
            and status not in _NO_BODY_STATUSES
            and status >= 200
        )
        self.headers_done = True
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self._decoder is not None:
            try:
                body = self._decoder.decompress(body)
            except zlib.error as exc:
                self._fail(UpstreamError(cause="bad_http", detail=f"undecodable body: {exc}"))
                self.abort()
                return
        if body:
            self.body.append(body)
            self.buffered += len(body)
            if self.buffered > HIGH_WATER and not self._paused and self.transport is not None:
                self._paused = True
                self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self.body.append(tail)
                self.buffered += len(tail)
        self.complete = True
        self.keep_alive = self.parser.should_keep_alive() and not self._until_close
        self._wake()

    # --- for the response -------------------------------------------------------------------

    def _fail(self, error: UpstreamError) -> None:
        if self.error is None:
            self.error = error
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)

    async def wait(self) -> None:
        """Until something arrives: headers, body, the end, or an error."""
        waiter = self.loop.create_future()
        self._waiter = waiter
        await waiter

    def take(self) -> bytes:
        """The body received so far, removed from the buffer."""
        body = self.body
        data = body[0] if len(body) == 1 else b"".join(body)
        body.clear()
        self.buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed and self.error is None

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


class Response:
    """An upstream's answer: status and headers at once, the body on demand."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection
        self.status = connection.status
        self.headers = connection.headers

    async def read(self, limit: int | None = None) -> bytes:
        """The whole body (or its first ``limit`` bytes)."""
        conn = self._connection
        while not conn.complete:
            if conn.error is not None:
                raise conn.error
            if limit is not None and conn.buffered >= limit:
                return conn.take()[:limit]
            await conn.wait()
        data = conn.take()
        return data if limit is None else data[:limit]

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body in the pieces the network delivered, as they arrive."""
        conn = self._connection
        while True:
            if conn.body:
                yield conn.take()
            elif conn.complete:
                return
            elif conn.error is not None:
                raise conn.error
            else:
                await conn.wait()
