"""One SSE relay for both doors: what it does with a stream is the same whichever encoder
writes the events (batching, the error event after what already arrived, the client gone)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from modelroute.engine import StreamFailed
from modelroute.failures import Failure, FailureClass
from modelroute.records.record import RequestRecord
from modelroute.router import ChatStream
from modelroute.server.anthropic_api import AnthropicEvents
from modelroute.server.anthropic_front import StreamToAnthropic
from modelroute.server.app import OpenAIEvents
from modelroute.server.asgi import CLIENT_GONE, Message
from modelroute.server.sse import Encoder, relay_sse
from modelroute.types import StreamChunk


def _chunk(text: str, more: bool = False) -> StreamChunk:
    data = {"id": "c", "model": "m", "choices": [{"index": 0, "delta": {"content": text}}]}
    chunk = StreamChunk.from_openai(data)
    chunk.more = more
    return chunk


async def _chunks(fail: bool) -> AsyncIterator[StreamChunk]:
    yield _chunk("one ", more=True)  # the next one is already here: one write for both
    yield _chunk("two ")
    yield _chunk("three ")
    if fail:
        raise StreamFailed(Failure(FailureClass.OVERLOADED, 529, "upstream overloaded"))


ENCODERS = {
    "openai": OpenAIEvents,
    "anthropic": lambda: AnthropicEvents(StreamToAnthropic("m", "msg_1")),
}


async def _relay(encoder: Encoder, fail: bool, gone: bool = False) -> list[Message]:
    stream = ChatStream(_chunks(fail), RequestRecord("r", 0.0), None, {})  # type: ignore[arg-type]
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        raise AssertionError("the gateway's own protocol needs no receive")

    scope: dict[str, Any] = {"extensions": {CLIENT_GONE: {"check": lambda: gone}}}
    await relay_sse(stream, encoder, scope, receive, send)
    return sent


@pytest.mark.parametrize("door", list(ENCODERS))
async def test_chunks_marked_more_share_a_write(door: str) -> None:
    sent = await _relay(ENCODERS[door](), fail=False)
    bodies = [m["body"] for m in sent[1:]]
    assert len(bodies) == 3  # one+two, three, the end
    assert b"one " in bodies[0] and b"two " in bodies[0] and b"three " in bodies[1]
    assert sent[-1].get("more_body") is None  # the end closes the response
    assert (b"[DONE]" if door == "openai" else b"message_stop") in bodies[-1]


@pytest.mark.parametrize("door", list(ENCODERS))
async def test_an_error_event_ends_a_broken_stream(door: str) -> None:
    sent = await _relay(ENCODERS[door](), fail=True)
    last = sent[-1]["body"]
    assert b"three " in sent[-2]["body"]
    assert (b'"code":"overloaded"' if door == "openai" else b'"type":"overloaded_error"') in last
    assert b"upstream overloaded" in last and sent[-1].get("more_body") is None


@pytest.mark.parametrize("door", list(ENCODERS))
async def test_a_client_gone_stops_the_relay(door: str) -> None:
    sent = await _relay(ENCODERS[door](), fail=False, gone=True)
    assert len(sent) == 2  # the start and the first write; nothing after the client left
