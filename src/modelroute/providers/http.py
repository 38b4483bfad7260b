"""One pooled HTTP client for every upstream: connections are reused, never made per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp

from modelroute.types import UpstreamError


class Transport:
    """Owns the aiohttp session (one connection pool, keep-alive per host)."""

    def __init__(self, *, limit_per_host: int = 1000) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._limit_per_host = limit_per_host

    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=0,
                limit_per_host=self._limit_per_host,
                keepalive_timeout=30,
                enable_cleanup_closed=True,
            )
            self._session = aiohttp.ClientSession(
                connector=connector,
                timeout=aiohttp.ClientTimeout(total=None),  # the engine's deadline governs
                skip_auto_headers=("User-Agent",),
                auto_decompress=True,
            )
        return self._session

    @asynccontextmanager
    async def post(
        self, url: str, headers: dict[str, str], data: bytes
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """POST and yield the response; transport errors become ``UpstreamError``."""
        try:
            async with self.session().post(url, data=data, headers=headers) as response:
                yield response
        except UpstreamError:
            raise
        except (aiohttp.ClientError, OSError) as exc:
            raise UpstreamError(cause=type(exc).__name__, detail=str(exc)[:300]) from exc

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


async def read_error(response: aiohttp.ClientResponse) -> UpstreamError:
    """An error response, read whole (bounded), as an ``UpstreamError``."""
    try:
        body = await response.content.read(64 * 1024)
    except (aiohttp.ClientError, OSError):
        body = b""
    return UpstreamError(
        status=response.status,
        body=body,
        headers=dict(response.headers),
        detail=body[:200].decode("utf-8", "replace"),
    )


def _event(block: bytes) -> tuple[str, bytes] | None:
    """One SSE event block (the lines between blank lines) as (event name, data)."""
    event = ""
    data: list[bytes] = []
    for raw in block.split(b"\n"):
        line = raw.rstrip(b"\r")
        if line.startswith(b"data:"):
            data.append(line[5:].lstrip(b" "))
        elif line.startswith(b"event:"):
            event = line[6:].strip().decode("ascii", "replace")
    return (event, b"\n".join(data)) if data else None


async def sse_data(
    response: aiohttp.ClientResponse,
) -> AsyncIterator[tuple[str, bytes, bool]]:
    """Yield (event name, data payload, more) for each server-sent event, as bytes arrive;
    ``more`` says another complete event is already buffered.

    Reads whatever the socket has (``iter_any``) and splits events itself: one await per
    network read instead of one per line, which is most of a relay's cost per event.
    """
    buffer = b""
    try:
        async for piece in response.content.iter_any():
            buffer += piece
            if b"\r" in buffer:  # CRLF line ends, possibly split across reads
                buffer = buffer.replace(b"\r\n", b"\n")
            while True:
                end = buffer.find(b"\n\n")
                if end < 0:
                    break
                block, buffer = buffer[:end], buffer[end + 2 :]
                found = _event(block)
                if found is not None:
                    yield found[0], found[1], b"\n\n" in buffer
        found = _event(buffer) if buffer.strip() else None
        if found is not None:
            yield found[0], found[1], False
    except (aiohttp.ClientError, OSError) as exc:
        raise UpstreamError(
            cause=type(exc).__name__, note="stream_cut", detail=str(exc)[:300]
        ) from exc


def json_headers(extra: dict[str, Any] | None = None) -> dict[str, str]:
    headers = {"content-type": "application/json", "accept": "application/json"}
    if extra:
        headers.update({k: str(v) for k, v in extra.items()})
    return headers
