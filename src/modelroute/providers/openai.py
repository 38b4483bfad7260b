"""OpenAI Chat Completions wire format: OpenAI, Azure OpenAI, vLLM, llama.cpp, Ollama, Groq,
OpenRouter, Together and the simulator. The canonical request already is this format, so the
body goes out with only ``model`` replaced, and answers come back untranslated. A Responses
API request routed to a model with the ``responses`` capability goes to that API instead
(``openai_responses``)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson

from modelroute.policy.compiled import Model
from modelroute.providers import openai_responses
from modelroute.providers.answers import answer_json, event_object, malformed, post_for_body
from modelroute.providers.http import (
    Transport,
    json_headers,
    read_error,
    sse_events,
    unsendable,
)
from modelroute.providers.openai_body import openai_body
from modelroute.request_fields import RESPONSES_REQUEST
from modelroute.types import Completion, StreamChunk, UpstreamError


class OpenAIProvider:
    def __init__(self, transport: Transport) -> None:
        self.transport = transport

    @staticmethod
    def _headers(api_key: str | None) -> dict[str, str]:
        extra = {"authorization": f"Bearer {api_key}"} if api_key else None
        return json_headers(extra)

    async def complete(self, model: Model, body: dict[str, Any], api_key: str | None) -> Completion:
        native = _native_request(model, body)
        if native is not None:
            return await openai_responses.complete(
                self.transport, self._headers(api_key), model, native
            )
        # A streamed request can be asked whole (a cascade's early tier): OpenAI refuses
        # stream_options without stream with a 400, so they go too.
        body = _without(_wire_body(model, body), "stream_options")
        payload = orjson.dumps({**_sendable(body), "model": model.model_id, "stream": False})
        url = f"{model.base_url}/chat/completions"
        raw = await post_for_body(self.transport, url, self._headers(api_key), payload)
        data = answer_json(raw)
        if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
            raise malformed(raw, "response has no 'choices'")
        return Completion.from_openai(data)

    async def stream(
        self, model: Model, body: dict[str, Any], api_key: str | None
    ) -> AsyncIterator[StreamChunk]:
        native = _native_request(model, body)
        if native is not None:
            answer = openai_responses.stream(self.transport, self._headers(api_key), model, native)
            async with contextlib.aclosing(answer) as native_chunks:
                async for native_chunk in native_chunks:
                    yield native_chunk
            return
        # Usage arrives only when asked for; cost accounting needs it on every stream.
        options = {**(body.get("stream_options") or {}), "include_usage": True}
        payload = orjson.dumps(
            {
                **_sendable(_wire_body(model, body)),
                "model": model.model_id,
                "stream": True,
                "stream_options": options,
            }
        )
        url = f"{model.base_url}/chat/completions"
        headers = self._headers(api_key)
        headers["accept"] = "text/event-stream"
        async with self.transport.post(url, headers, payload) as response:
            if response.status != 200:
                raise await read_error(response)
            done = False
            # Closed here when we stop at [DONE]: left to the garbage collector, each stream
            # would cost an extra task (the loop's async-generator finalizer) and a cycle.
            async with contextlib.aclosing(sse_events(response)) as reads:
                async for events in reads:
                    last = len(events) - 1
                    for index, (_event, data) in enumerate(events):
                        if data == b"[DONE]":
                            done = True
                            break
                        chunk = _chunk(data)
                        chunk.more = index < last  # the next event is here already
                        yield chunk
                    if done:
                        break
            if not done:
                raise UpstreamError(
                    note="stream_cut", cause="EndOfStream", detail="stream ended without [DONE]"
                )

    async def aclose(self) -> None:
        """The transport is shared; its owner closes it."""


def _native_request(model: Model, body: dict[str, Any]) -> dict[str, Any] | None:
    """The Responses API request to send as is, when the model's upstream serves that API."""
    request = body.get(RESPONSES_REQUEST)
    if isinstance(request, dict) and "responses" in model.capabilities:
        return request
    return None


def _without(body: dict[str, Any], field: str) -> dict[str, Any]:
    if field not in body:
        return body
    return {key: value for key, value in body.items() if key != field}


def _sendable(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI accepts ``metadata`` only with ``store: true`` (else a 400): without it, the
    client's metadata is the gateway's alone (routing reads it, records keep it)."""
    if "metadata" in body and body.get("store") is not True:
        return _without(body, "metadata")
    return body


def _wire_body(model: Model, body: dict[str, Any]) -> dict[str, Any]:
    """A body this model cannot be sent fails as the upstream's 400 would, before sending."""
    try:
        return openai_body(body, model.name)
    except ValueError as exc:
        raise unsendable(str(exc)) from None


def _chunk(data: bytes) -> StreamChunk:
    parsed = event_object(data)
    if "error" in parsed:
        raise UpstreamError(
            note="stream_error_event", body=data[:4000], detail="error event in stream"
        )
    return StreamChunk.from_openai(parsed, data)
