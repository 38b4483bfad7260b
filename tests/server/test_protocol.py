"""The gateway's HTTP protocol: a response's writes leave in one send per loop turn."""

from __future__ import annotations

import asyncio
import socket

from modelroute.server.protocol import CoalescingTransport


class _Sink(asyncio.Protocol):
    def __init__(self) -> None:
        self.received: list[bytes] = []

    def data_received(self, data: bytes) -> None:
        self.received.append(data)


async def _pair() -> tuple[asyncio.Transport, socket.socket]:
    """A real transport over a socket pair, and the raw far end to count sends with."""
    ours, theirs = socket.socketpair()
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_connection(_Sink, sock=ours)
    theirs.setblocking(False)
    return transport, theirs


async def _reads(sock: socket.socket) -> list[bytes]:
    """What the far end can read now."""
    await asyncio.sleep(0.01)
    pieces = []
    while True:
        try:
            piece = sock.recv(65536)
        except BlockingIOError:
            return pieces
        if not piece:  # closed
            return pieces
        pieces.append(piece)


async def test_writes_in_one_turn_leave_together() -> None:
    transport, far = await _pair()
    coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
    coalescing.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
    coalescing.write(b"{}")
    assert coalescing.get_write_buffer_size() == 40  # still ours until the loop turns
    assert b"".join(await _reads(far)) == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"
    coalescing.write(b"next")
    await asyncio.sleep(0)
    coalescing.write(b"turn")
    assert b"".join(await _reads(far)) == b"nextturn"
    transport.close()
    far.close()


async def test_close_sends_what_is_pending_first() -> None:
    transport, far = await _pair()
    coalescing = CoalescingTransport(transport, asyncio.get_running_loop())
    coalescing.write(b"last words")
    coalescing.close()
    assert b"".join(await _reads(far)) == b"last words"
    assert coalescing.is_closing()  # passed through to the real transport
    far.close()
