"""Connection-level faults: the ones that are not an HTTP response at all.

These rely on the app being served with ``handler_cancellation=True``: once the
connection is gone, aiohttp cancels the handler, which ends the long sleeps below instead
of leaving them to pile up.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct

from aiohttp import web

# Long enough that any client gives up first; short enough not to outlive a forgotten test.
HANG_S = 3600.0


async def hang() -> None:
    """Accept the request and never answer (until the client goes away)."""
    await asyncio.sleep(HANG_S)


async def reset_connection(request: web.Request) -> None:
    """Close the TCP connection with an RST, without sending any response.

    SO_LINGER with a zero timeout makes close() send RST instead of FIN, which is what a
    crashing load balancer or a killed upstream looks like to the client.
    """
    transport = request.transport
    if transport is None:
        return
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    await hang()


async def drop_connection(request: web.Request) -> None:
    """Close the connection mid-response (FIN, no RST).

    Used mid-stream: what was already written reaches the client, then the chunked body
    ends without its terminator, so the client sees an incomplete stream rather than a
    reset that might also discard the chunks it has not read yet.
    """
    transport = request.transport
    if transport is not None:
        transport.abort()
    await hang()
