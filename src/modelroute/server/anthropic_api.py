"""``POST /v1/messages``: the Anthropic Messages front door.

The client's Anthropic request is translated once into the canonical OpenAI body, routed like
any other request, and the answer translated back: a Message, or Anthropic's stream events.
Errors leave in Anthropic's error format.
"""

from __future__ import annotations

from typing import Any

from modelroute.router import ChatStream, Router, StreamFailed
from modelroute.server.anthropic_front import (
    StreamToAnthropic,
    completion_to_message,
    messages_to_openai,
)
from modelroute.server.asgi import (
    Disconnect,
    Receive,
    Scope,
    Send,
    request_headers,
    send_json,
    start_stream,
)
from modelroute.server.errors import HttpError, http_error


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
        requested = str(raw.get("model", ""))
        try:
            if body.get("stream"):
                stream = await self.router.stream(body, headers, endpoint="messages")
            else:
                result = await self.router.chat(body, headers, endpoint="messages")
        except Exception as exc:
            error = http_error(exc)
            await send_json(send, error.status, error.anthropic(), error.headers.items())
            return
        if body.get("stream"):
            await self._relay(stream, requested, scope, receive, send)
        else:
            message = completion_to_message(result.completion, requested)
            await send_json(send, 200, message, result.headers.items())

    async def _relay(
        self, stream: ChatStream, model: str, scope: Scope, receive: Receive, send: Send
    ) -> None:
        await start_stream(send, stream.headers.items())
        translator = StreamToAnthropic(model, "msg_" + stream.record.request_id.replace("-", ""))
        watcher = Disconnect(receive, scope)
        parts: list[bytes] = []
        try:
            async for chunk in stream:
                parts.append(translator.feed(chunk))  # usage too: message_delta reports it
                if chunk.more:
                    continue  # the next event is already here: one write for both
                frames = b"".join(parts)
                parts.clear()
                if frames:
                    await send({"type": "http.response.body", "body": frames, "more_body": True})
                if watcher.gone:
                    await stream.aclose()
                    return
            parts.append(translator.finish())
            await send({"type": "http.response.body", "body": b"".join(parts)})
        except StreamFailed as exc:
            kind = (
                "overloaded_error"
                if exc.failure_class in ("overloaded", "rate_limited")
                else ("api_error")
            )
            parts.append(translator.error(kind, str(exc)))  # after what already arrived
            await send({"type": "http.response.body", "body": b"".join(parts)})
        finally:
            watcher.stop()
