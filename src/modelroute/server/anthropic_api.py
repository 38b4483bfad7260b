"""``POST /v1/messages``: the Anthropic Messages front door.

The client's Anthropic request is translated once into the canonical OpenAI body, routed like
any other request, and the answer translated back: a Message, or Anthropic's stream events.
Errors leave in Anthropic's error format.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelroute.errors import ModelrouteError
from modelroute.router import Router
from modelroute.server.access import IDENTITY
from modelroute.server.anthropic_front import (
    StreamToAnthropic,
    completion_to_message,
    messages_to_openai,
)
from modelroute.server.asgi import Receive, Scope, Send, request_headers, send_json
from modelroute.server.errors import HttpError, http_error
from modelroute.server.sse import relay_sse
from modelroute.types import StreamChunk

# A failure after the first byte, as the type of Anthropic's ``error`` event.
_STREAM_ERROR_TYPES = {
    "overloaded": "overloaded_error",
    "rate_limited": "overloaded_error",
    "timeout": "timeout_error",
}


class AnthropicDoor:
    def __init__(self, router: Router) -> None:
        self.router = router

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        from modelroute.server.app import read_json

        raw, problem = await read_json(receive)
        body: dict[str, Any] | None = None
        if problem is None:
            try:
                body = messages_to_openai(raw)
            except ValueError as exc:
                problem = HttpError(400, "invalid_request", str(exc), {}, {})
        if problem is not None or body is None:
            assert problem is not None
            record = self.router.record_rejected(problem.message, problem.status, "messages")
            problem.headers["x-modelroute-request-id"] = record.request_id
            await send_json(send, problem.status, problem.anthropic(), problem.headers.items())
            return
        headers = request_headers(scope)
        if body.get("stream"):  # Anthropic streams always end with usage; ask for it
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        try:
            identity = scope.get(IDENTITY)
            if body.get("stream"):
                stream = await self.router.stream(
                    body, headers, endpoint="messages", identity=identity
                )
            else:
                result = await self.router.chat(
                    body, headers, endpoint="messages", identity=identity
                )
        except Exception as exc:
            error = http_error(exc)
            await send_json(send, error.status, error.anthropic(), error.headers.items())
            return
        if body.get("stream"):
            events = AnthropicEvents(
                StreamToAnthropic(
                    self._model_id(stream.headers),
                    "msg_" + stream.record.request_id.replace("-", ""),
                    stream.decision.prompt_tokens,  # until the upstream's own count is known
                )
            )
            await relay_sse(stream, events, scope, receive, send)
        else:
            model = result.completion.model_reported or self._model_id(result.headers)
            message = completion_to_message(result.completion, model)
            await send_json(send, 200, message, result.headers.items())

    async def count_tokens(self, scope: Scope, receive: Receive, send: Send) -> None:
        """``POST /v1/messages/count_tokens``: the prompt's tokens as routing estimates them
        (offline, with OpenAI's o200k tokenizer: Claude's own count differs by a few percent
        to tens of percent). Not routed, so no record."""
        from modelroute.server.app import read_json

        raw, problem = await read_json(receive)
        if problem is None:
            try:
                body = messages_to_openai(raw, counting=True)
                tokens = self.router.prompt_tokens(body, request_headers(scope))
            except ValueError as exc:
                problem = HttpError(400, "invalid_request", str(exc), {}, {})
            except ModelrouteError as exc:
                problem = http_error(exc)
        if problem is not None:
            await send_json(send, problem.status, problem.anthropic(), problem.headers.items())
            return
        await send_json(send, 200, {"input_tokens": tokens})

    def _model_id(self, headers: Mapping[str, str]) -> str:
        """The model that answered, as its provider named it (the body's ``model`` on both
        doors; the route and the policy's name for the model are in x-modelroute-* headers).
        The policy's ``model_id`` stands in when the provider named none."""
        reported = headers.get("x-modelroute-model-version")
        if reported:
            return reported
        name = headers.get("x-modelroute-model", "")
        model = self.router.policy.models.get(name)
        return model.model_id if model is not None else name


class AnthropicEvents:
    """Messages stream events, translated from the canonical chunks as they pass."""

    __slots__ = ("translator",)

    def __init__(self, translator: StreamToAnthropic) -> None:
        self.translator = translator

    def feed(self, chunk: StreamChunk, parts: list[bytes]) -> None:
        events = self.translator.feed(chunk)  # usage too: message_delta reports it
        if events:
            parts.append(events)

    def end(self) -> bytes:
        return self.translator.finish()

    def error(self, failure_class: str, message: str) -> bytes:
        kind = _STREAM_ERROR_TYPES.get(failure_class, "api_error")
        return self.translator.error(kind, message)
