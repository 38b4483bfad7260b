"""The one relay of a streamed answer to the client as server-sent events, for every door.

A door supplies only its ``Encoder``: how a chunk, the end and an error after the first byte
are written. The relay owns the rest: the response start, batching (a chunk marked ``more``
goes out in the same write as the next), noticing a client that went away, and the error
event that ends a stream broken after its first byte, after what already arrived.
"""

from __future__ import annotations

from typing import Protocol

from modelroute.engine import StreamFailed
from modelroute.router import ChatStream
from modelroute.server.asgi import Disconnect, Receive, Scope, Send, start_stream
from modelroute.types import StreamChunk


class Encoder(Protocol):
    def feed(self, chunk: StreamChunk, parts: list[bytes]) -> None:
        """Append the chunk's events to ``parts`` (nothing, when it has none to send).
        Appending pieces rather than returning joined bytes keeps one join per write."""

    def end(self) -> bytes:
        """The stream's last event(s), after its last chunk."""

    def error(self, failure_class: str, message: str) -> bytes:
        """The event that ends a stream which failed after its first byte."""


async def relay_sse(
    stream: ChatStream, encoder: Encoder, scope: Scope, receive: Receive, send: Send
) -> None:
    await start_stream(send, stream.headers.items())
    watcher = Disconnect(receive, scope)
    feed = encoder.feed
    parts: list[bytes] = []
    try:
        async for chunk in stream:
            feed(chunk, parts)
            if chunk.more or not parts:
                continue  # the next event is already here: one write for both
            await send({"type": "http.response.body", "body": b"".join(parts), "more_body": True})
            parts.clear()
            if watcher.gone:
                await stream.aclose()
                return
        parts.append(encoder.end())
        await send({"type": "http.response.body", "body": b"".join(parts)})
    except StreamFailed as exc:
        # What already arrived goes out first, then the error event ends the stream.
        parts.append(encoder.error(exc.failure_class, str(exc)))
        await send({"type": "http.response.body", "body": b"".join(parts)})
    finally:
        watcher.stop()
