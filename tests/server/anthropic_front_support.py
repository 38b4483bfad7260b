"""Shared parts of the Anthropic front door tests: the official ``anthropic`` SDK reading a
streamed answer we produced, through an in-process transport."""

from __future__ import annotations

import anthropic
import httpx2
from anthropic.types import Message


async def sdk_final_message(raw: bytes) -> Message:
    """Serve ``raw`` as a streamed /v1/messages answer and let the SDK accumulate it."""

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=raw, headers={"content-type": "text/event-stream"})

    http = httpx2.AsyncClient(transport=httpx2.MockTransport(handler))
    client = anthropic.AsyncAnthropic(api_key="k", http_client=http, max_retries=0)
    try:
        async with client.messages.stream(
            model="support-triage", max_tokens=64, messages=[{"role": "user", "content": "x"}]
        ) as stream:
            return await stream.get_final_message()
    finally:
        await client.close()
