"""Anthropic Messages wire format: ``POST {base_url}/v1/messages``, plain and streamed.

The canonical request is translated by ``anthropic_wire`` and answers come back in OpenAI shape,
so nothing past this module knows the upstream spoke Anthropic.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from modelroute.policy.compiled import Model
from modelroute.providers.answers import answer_json, event_object, malformed, post_for_body
from modelroute.providers.anthropic_wire import (
    StreamTranslator,
    from_anthropic_message,
    to_anthropic_request,
)
from modelroute.providers.http import (
    Transport,
    json_headers,
    read_error,
    sse_events,
    unsendable,
)
from modelroute.types import Completion, StreamChunk, UpstreamError

ANTHROPIC_VERSION = "2023-06-01"


class AnthropicProvider:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @staticmethod
    def url(model: Model) -> str:
        # Policies name the host (https://api.anthropic.com); a base_url copied from an
        # OpenAI-style config may already end in /v1, which must not be doubled.
        base = model.base_url.rstrip("/")
        return f"{base}/messages" if base.endswith("/v1") else f"{base}/v1/messages"

    @staticmethod
    def _headers(api_key: str | None, *, stream: bool) -> dict[str, str]:
        extra = {"anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            extra["x-api-key"] = api_key
        headers = json_headers(extra)
        if stream:
            headers["accept"] = "text/event-stream"
        return headers

    async def complete(self, model: Model, body: dict[str, Any], api_key: str | None) -> Completion:
        payload = _payload(model, body, stream=False)
        headers = self._headers(api_key, stream=False)
        return _completion(await post_for_body(self.transport, self.url(model), headers, payload))

    async def stream(
        self, model: Model, body: dict[str, Any], api_key: str | None
    ) -> AsyncIterator[StreamChunk]:
        payload = _payload(model, body, stream=True)
        headers = self._headers(api_key, stream=True)
        translator = StreamTranslator(created=int(time.time()))
        async with self.transport.post(self.url(model), headers, payload) as response:
            if response.status != 200:
                raise await read_error(response)
            async with contextlib.aclosing(sse_events(response)) as reads:
                async for events in reads:
                    chunks: list[StreamChunk] = []
                    failed: UpstreamError | None = None
                    for event, data in events:
                        try:
                            chunks += translator.feed(event, event_object(data))
                        except UpstreamError as exc:  # what came before it still goes out
                            failed = exc
                            break
                        if translator.done:
                            break
                    last = len(chunks) - 1
                    for index, chunk in enumerate(chunks):
                        chunk.more = index < last  # the next chunk is here already
                        yield chunk
                    if failed is not None:
                        raise failed
                    if translator.done:
                        break
            if not translator.done:
                raise UpstreamError(
                    note="stream_cut",
                    cause="EndOfStream",
                    detail="stream ended without message_stop",
                )

    async def aclose(self) -> None:
        """The transport is shared; its owner closes it."""


def _payload(model: Model, body: dict[str, Any], *, stream: bool) -> bytes:
    """The request bytes; a body that cannot be translated fails as the upstream's 400 would."""
    try:
        request = to_anthropic_request(body, model.model_id)
    except ValueError as exc:
        raise unsendable(str(exc)) from None
    request["stream"] = stream
    return orjson.dumps(request)


def _completion(raw: bytes) -> Completion:
    data = answer_json(raw)
    if not isinstance(data, dict) or data.get("type") != "message":
        raise malformed(raw, "response is not a message")
    try:
        return from_anthropic_message(data, created=int(time.time()))
    except ValueError as exc:
        raise malformed(raw, str(exc)) from None
