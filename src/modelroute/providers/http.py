"""The pooled HTTP client every provider sends through: keep-alive connections per origin,
reused across requests, never one per request."""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from collections.abc import AsyncGenerator
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

import orjson

from modelroute.providers.connection import Connection, Response
from modelroute.types import UpstreamError

Origin = tuple[str, str, int]  # scheme, host, port
_ORIGIN_CACHE_LIMIT = 4096


def _connect_cause(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "certificate_error"
    if isinstance(exc, ConnectionRefusedError):
        return "refused"
    if exc.__class__.__name__ == "gaierror":
        return "dns_error"
    return "connect_error"


class _Pool:
    """The connections to one origin: idle ones (most recent last) and a cap on open ones."""

    def __init__(self, limit: int) -> None:
        self.idle: deque[Connection] = deque()  # oldest on the left
        self.open = 0
        self.limit = limit
        self.waiters: deque[asyncio.Future[None]] = deque()


def _usable(conn: Connection) -> bool:
    """An idle connection may carry a request: not closed by either side."""
    return not conn.closed and conn.transport is not None and not conn.transport.is_closing()


class Transport:
    """Owns every upstream connection. ``post`` is used as ``async with``; leaving the block
    returns the connection to the pool when its exchange finished cleanly, else closes it."""

    def __init__(self, *, limit_per_host: int = 1000, idle_timeout_s: float = 30.0) -> None:
        self._limit = limit_per_host
        self._idle_timeout = idle_timeout_s
        self._pools: dict[Origin, _Pool] = {}
        self._targets: dict[str, tuple[Origin, bytes]] = {}
        self._ssl: ssl.SSLContext | None = None
        self._closed = False

    def warm_up(self) -> None:
        """Load the CA certificates now rather than on the first HTTPS request."""
        self.ssl_context()

    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            self._ssl = ssl.create_default_context()
        return self._ssl

    def post(self, url: str, headers: dict[str, str], data: bytes) -> _Exchange:
        return _Exchange(self, url, headers, data)

    def _target(self, url: str) -> tuple[Origin, bytes]:
        found = self._targets.get(url)
        if found is None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise UpstreamError(cause="connect_error", detail=f"not an http(s) URL: {url}")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            found = ((parts.scheme, parts.hostname, port), path.encode("ascii"))
            if len(self._targets) >= _ORIGIN_CACHE_LIMIT:
                self._targets.clear()
            self._targets[url] = found
        return found

    async def _acquire(self, origin: Origin) -> Connection:
        """A connection to ``origin``: the most recently idle one that is still open, else a
        new one. An idle connection the server closed (its keep-alive ran out) is noticed
        here, before anything is written to it, and replaced."""
        pool = self._pools.get(origin)
        if pool is None:
            pool = self._pools[origin] = _Pool(self._limit)
        loop = asyncio.get_running_loop()
        now = loop.time()
        while pool.idle:
            conn = pool.idle.pop()
            if _usable(conn) and now - conn.idle_since < self._idle_timeout:
                conn.begin()
                return conn
            pool.open -= 1
            conn.abort()
        while pool.open >= pool.limit:
            waiter = loop.create_future()
            pool.waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._wake_one(pool)  # our turn came as we left: pass it on
                raise
            if pool.idle:
                conn = pool.idle.pop()
                if _usable(conn):
                    conn.begin()
                    return conn
                pool.open -= 1
                conn.abort()
        pool.open += 1
        try:
            return await self._connect(loop, origin)
        except BaseException:
            self._forget(origin)
            raise

    async def _connect(self, loop: asyncio.AbstractEventLoop, origin: Origin) -> Connection:
        scheme, host, port = origin
        secure = scheme == "https"
        try:
            _, conn = await loop.create_connection(
                lambda: Connection(loop),
                host,
                port,
                ssl=self.ssl_context() if secure else None,
                server_hostname=host if secure else None,
            )
        except OSError as exc:
            raise UpstreamError(
                cause=_connect_cause(exc), detail=f"cannot connect to {host}:{port}: {exc}"
            ) from exc
        return conn

    def _release(self, origin: Origin, conn: Connection) -> None:
        pool = self._pools[origin]
        now = conn.loop.time()  # (asyncio.get_running_loop() costs a getpid() system call)
        if conn.reusable() and not self._closed:
            conn.idle_since = now
            pool.idle.append(conn)
        else:
            conn.abort()
            pool.open -= 1
        # Close what has idled too long since a burst (reuse takes the newest first).
        while pool.idle and now - pool.idle[0].idle_since >= self._idle_timeout:
            pool.idle.popleft().abort()
            pool.open -= 1
        self._wake_one(pool)

    def _forget(self, origin: Origin) -> None:
        """A connection that was counted but never made."""
        pool = self._pools[origin]
        pool.open -= 1
        self._wake_one(pool)

    @staticmethod
    def _wake_one(pool: _Pool) -> None:
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                break

    async def aclose(self) -> None:
        self._closed = True
        for pool in self._pools.values():
            for conn in pool.idle:
                conn.abort()
            pool.open -= len(pool.idle)
            pool.idle.clear()


class _Exchange:
    """One request and its response, as an async context manager (no generator per call)."""

    __slots__ = ("_conn", "_data", "_headers", "_origin", "_transport", "_url")

    def __init__(self, transport: Transport, url: str, headers: dict[str, str], data: bytes):
        self._transport = transport
        self._url = url
        self._headers = headers
        self._data = data
        self._conn: Connection | None = None

    async def __aenter__(self) -> Response:
        transport = self._transport
        origin, path = transport._target(self._url)
        self._origin = origin
        head = _request_head(origin, path, self._headers, len(self._data))
        conn = await transport._acquire(origin)
        self._conn = conn
        try:
            assert conn.transport is not None
            conn.transport.write(head + self._data)
            while not conn.headers_done and conn.error is None:
                await conn.wait()
        except BaseException:  # cancelled (the deadline) before any answer
            await self.__aexit__(None, None, None)
            raise
        if conn.error is not None:
            # Never sent again here, even on a reused connection: once written, the request
            # may have been processed (and billed) upstream, so it is an attempt the engine
            # records and retries by the policy. A pooled connection already known closed is
            # never written to (see ``_acquire``).
            self._conn = None
            transport._release(origin, conn)
            raise conn.error
        return Response(conn)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn = self._conn
        if conn is not None:
            self._conn = None
            if exc is not None or not conn.complete:
                conn.abort()  # cancelled, failed or left unread: the connection is spoiled
            self._transport._release(self._origin, conn)


def _request_head(origin: Origin, path: bytes, headers: dict[str, str], length: int) -> bytes:
    scheme, host, port = origin
    default = 443 if scheme == "https" else 80
    authority = host if port == default else f"{host}:{port}"
    lines = [f"POST {path.decode('ascii')} HTTP/1.1\r\nhost: {authority}\r\n"]
    for name, value in headers.items():
        if "\n" in value or "\r" in value or "\n" in name or "\r" in name:
            raise UpstreamError(cause="bad_request", detail=f"header {name!r} has a line break")
        lines.append(f"{name}: {value}\r\n")
    lines.append(f"content-length: {length}\r\n\r\n")
    return "".join(lines).encode("latin-1")


async def read_error(response: Response) -> UpstreamError:
    """An error response, read whole (bounded), as an ``UpstreamError``."""
    try:
        body = await response.read(64 * 1024)
    except UpstreamError:
        body = b""
    return UpstreamError(
        status=response.status,
        body=body,
        headers=dict(response.headers),
        detail=body[:200].decode("utf-8", "replace"),
    )


def unsendable(detail: str) -> UpstreamError:
    """A request this upstream cannot be sent, failed as its 400 would fail, unsent."""
    error = {
        "error": {"message": detail, "type": "invalid_request_error", "param": None, "code": None}
    }
    return UpstreamError(status=400, body=orjson.dumps(error), detail=detail)


def _event(block: bytes) -> tuple[str, bytes] | None:
    """One SSE event block (the lines between blank lines) as (event name, data)."""
    if block.startswith(b"data:") and b"\n" not in block:  # the usual block: one data line
        return "", block[5:].lstrip(b" ")
    event = ""
    data: list[bytes] = []
    for raw in block.split(b"\n"):
        line = raw.rstrip(b"\r")
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode("ascii", "replace")
    return (event, b"\n".join(data)) if data else None


async def sse_events(
    response: Response,
) -> AsyncGenerator[list[tuple[str, bytes]], None]:
    """Yield the server-sent events (event name, data payload) that each network read
    completes, as one list per read.

    A relay's cost is counted per event; taking events a read at a time means one await per
    read rather than per event (or per line), and lets the relay send what arrived together
    in one write.
    """
    buffer = b""
    try:
        async for piece in response.chunks():
            buffer += piece
            if b"\r" in buffer:  # CRLF line ends, possibly split across reads
                buffer = buffer.replace(b"\r\n", b"\n")
            if b"\n\n" not in buffer:
                continue
            # One split per read; what follows the last blank line waits for the next read.
            blocks = buffer.split(b"\n\n")
            buffer = blocks.pop()
            events = []
            for block in blocks:
                # The usual block, one data line, read here as ``_event`` reads it: a call
                # less per event. Any other block goes to ``_event``.
                if block.startswith(b"data:") and b"\n" not in block:
                    events.append(("", block[5:].lstrip(b" ")))
                elif (found := _event(block)) is not None:
                    events.append(found)
            if events:
                yield events
        found = _event(buffer) if buffer.strip() else None
        if found is not None:
            yield [found]
    except UpstreamError as exc:
        exc.note = exc.note or "stream_cut"
        raise


def json_headers(extra: dict[str, Any] | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if extra:
        headers.update({k: str(v) for k, v in extra.items()})
    return headers
