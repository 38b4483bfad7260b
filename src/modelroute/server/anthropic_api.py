"""``POST /v1/messages``: the Anthropic Messages front door.

The client's Anthropic request is translated once into the canonical OpenAI body, routed like
any other request, and the answer translated back: a Message, or Anthropic's stream events.
Errors leave in Anthropic's error format.
"""

from __future__ import annotations

from modelroute.errors import ModelrouteError
from modelroute.router import ChatStream, Router
from modelroute.server.anthropic_front import (
    StreamToAnthropic,
    completion_to_message,
    messages_to_openai,
)
from modelroute.server.asgi import Receive, Scope, Send, request_headers, send_json
from modelroute.server.door import TranslatedEvents, answering_model, read_translated, route
from modelroute.server.errors import HttpError, http_error
from modelroute.server.sse import relay_sse

ENDPOINT = "messages"

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
        body = await read_translated(
            self.router,
            receive,
            send,
            messages_to_openai,
            ValueError,
            ENDPOINT,
            HttpError.anthropic,
        )
        if body is None:
            return
        if body.get("stream"):  # Anthropic streams always end with usage; ask for it
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        answer = await route(self.router, scope, send, body, ENDPOINT, HttpError.anthropic)
        if answer is None:
            return
        if isinstance(answer, ChatStream):
            events = AnthropicEvents(
                StreamToAnthropic(
                    answering_model(self.router, answer.headers),
                    "msg_" + answer.record.request_id.replace("-", ""),
                    answer.decision.prompt_tokens,  # until the upstream's own count is known
                )
            )
            await relay_sse(answer, events, scope, receive, send)
        else:
            model = answer.completion.model_reported or answering_model(self.router, answer.headers)
            message = completion_to_message(answer.completion, model)
            await send_json(send, 200, message, answer.headers.items())

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


class AnthropicEvents(TranslatedEvents):
    """Messages stream events, translated from the canonical chunks as they pass (usage
    too: message_delta reports it)."""

    __slots__ = ()

    def error(self, failure_class: str, message: str) -> bytes:
        kind = _STREAM_ERROR_TYPES.get(failure_class, "api_error")
        return self.translator.error(kind, message)
