"""``POST /v1/responses``: OpenAI's Responses API front door.

The request is translated once into the canonical body (``responses_front``), routed like
any chat request (same planner, limits, fallbacks, records and headers), and answered as a
``response`` object or the Responses API's stream events (``responses_reply``). A model
with the ``responses`` capability is sent the request as the client wrote it; any other its
Chat Completions translation. A request the translation cannot carry, on a route with no
model that serves the Responses API, is a 400 naming what cannot be bridged
(``NotBridgeableError``, classified where the record is written, so both say 400). Errors
leave in OpenAI's error format.
"""

from __future__ import annotations

import time

from modelroute.request_fields import RESPONSES_REQUEST
from modelroute.router import ChatStream, Router
from modelroute.server.asgi import Receive, Scope, Send, send_json
from modelroute.server.door import TranslatedEvents, answering_model, read_translated, route
from modelroute.server.errors import HttpError
from modelroute.server.responses_front import BridgeError, responses_to_chat
from modelroute.server.responses_reply import StreamToResponses, completion_to_response
from modelroute.server.sse import relay_sse

ENDPOINT = "responses"


class ResponsesDoor:
    def __init__(self, router: Router) -> None:
        self.router = router

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await read_translated(
            self.router, receive, send, responses_to_chat, BridgeError, ENDPOINT, HttpError.openai
        )
        if body is None:
            return
        if body.get("stream"):  # the completed response carries usage: always ask for it
            body["stream_options"] = {"include_usage": True}
        answer = await route(self.router, scope, send, body, ENDPOINT, HttpError.openai)
        if answer is None:
            return
        request = body[RESPONSES_REQUEST]
        created = int(time.time())
        response_id = "resp_" + answer.record.request_id.replace("-", "")
        if isinstance(answer, ChatStream):
            model = answering_model(self.router, answer.headers)
            translator = StreamToResponses(request, response_id, model, created)
            await relay_sse(answer, ResponsesEvents(translator), scope, receive, send)
            return
        model = answer.completion.model_reported or answering_model(self.router, answer.headers)
        response = completion_to_response(answer.completion, request, response_id, model, created)
        await send_json(send, 200, response, answer.headers.items())


class ResponsesEvents(TranslatedEvents):
    """Responses API stream events, passed through or translated as the chunks pass."""

    __slots__ = ()
