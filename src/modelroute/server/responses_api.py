"""``POST /v1/responses``: OpenAI's Responses API front door.

The request is translated once into the canonical body (``responses_front``), routed like
any chat request (same planner, limits, fallbacks, records and headers), and answered as a
``response`` object or the Responses API's stream events (``responses_reply``). A model
with the ``responses`` capability is sent the request as the client wrote it; any other its
Chat Completions translation. A request the translation cannot carry, on a route with no
model that serves the Responses API, is a 400 naming what cannot be bridged
(``NotBridgeableError``, classified where the record is written, so both say 400). Errors
leave in OpenAI's error format.

With ``store`` true (the API's default) each response returned is kept once complete
(``responses_store``), for ``GET /v1/responses/{id}`` and for a later request's
``previous_response_id``, whose stored conversation goes before that request's input
(``responses_stored.with_previous``) whichever model serves it.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from modelroute.cache import StoreUnreachable
from modelroute.request_fields import RESPONSES_PREVIOUS, RESPONSES_REQUEST
from modelroute.router import ChatStream, Router
from modelroute.server.asgi import Message, Receive, Scope, Send, send_json
from modelroute.server.door import TranslatedEvents, answering_model, read_translated, route
from modelroute.server.errors import HttpError
from modelroute.server.responses_front import BridgeError, responses_to_chat
from modelroute.server.responses_reply import StreamToResponses, completion_to_response
from modelroute.server.responses_store import ResponseStore, StoredResponse, input_items
from modelroute.server.responses_stored import owner_of, with_previous
from modelroute.server.sse import relay_sse

ENDPOINT = "responses"
MODEL_HEADER = "x-modelroute-model"  # the policy's name of the model that answers

log = logging.getLogger(__name__)


class ResponsesDoor:
    def __init__(self, router: Router, store: ResponseStore | None = None) -> None:
        self.router = router
        self.store = store if store is not None else ResponseStore()

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        owner = owner_of(scope)
        sent: dict[str, Any] = {}  # the client's own body, before its conversation is added
        found: list[StoredResponse] = []  # the response it continues

        async def prepare(raw: dict[str, Any]) -> dict[str, Any]:
            sent.update(raw)
            body, previous = await with_previous(self.store, raw, owner)
            found.extend(() if previous is None else (previous,))
            return body

        body = await read_translated(
            self.router, receive, send, responses_to_chat, BridgeError, ENDPOINT,
            HttpError.openai, prepare,
        )  # fmt: skip
        if body is None:
            return
        if found:
            _name_the_previous(body, found[0], sent)
        if body.get("stream"):  # the completed response carries usage: always ask for it
            body["stream_options"] = {"include_usage": True}
        answer = await route(self.router, scope, send, body, ENDPOINT, HttpError.openai)
        if answer is None:
            return
        request = body[RESPONSES_REQUEST]
        # the response repeats the id the client sent, not the conversation it stands for
        echoed = {**request, "previous_response_id": sent.get("previous_response_id")}
        created = int(time.time())
        response_id = "resp_" + answer.record.request_id.replace("-", "")
        keep = sent.get("store") is not False
        # Stored before the client can read it whole: its next turn may name it at once.
        if isinstance(answer, ChatStream):
            model = answering_model(self.router, answer.headers)
            translator = StreamToResponses(echoed, response_id, model, created)
            if keep:
                send = self._keeping(send, translator, request, owner, answer)
            await relay_sse(answer, ResponsesEvents(translator), scope, receive, send)
            return
        model = answer.completion.model_reported or answering_model(self.router, answer.headers)
        response = completion_to_response(answer.completion, echoed, response_id, model, created)
        if keep:
            native = answer.record.final_model if answer.completion.response else None
            await self._keep(response, request, owner, native)
        await send_json(send, 200, response, answer.headers.items())

    def _keeping(
        self,
        send: Send,
        translator: StreamToResponses,
        request: dict[str, Any],
        owner: str | None,
        stream: ChatStream,
    ) -> Send:
        """``send``, storing the stream's response once it has one, before the bytes that
        carry it leave."""
        kept = False

        async def sending(message: Message) -> None:
            nonlocal kept
            final = translator.final
            if final is not None and not kept:
                kept = True
                # the record names its model once the stream has ended: not yet
                native = stream.headers.get(MODEL_HEADER) if translator.native else None
                await self._keep(final, request, owner, native)
            await send(message)

        return sending

    async def _keep(
        self,
        response: dict[str, Any],
        request: dict[str, Any],
        owner: str | None,
        native_model: str | None,
    ) -> None:
        """A complete response stored with its input items (the whole conversation:
        ``request``'s input already holds the previous one's)."""
        if response.get("status") not in ("completed", "incomplete"):
            return
        items = input_items(request.get("input"), str(response.get("id") or ""))
        try:
            await self.store.keep(StoredResponse(response, items, owner, native_model))
        except StoreUnreachable as exc:  # the answer has left: it goes unstored, said so
            log.warning("response %s not stored: %s", response.get("id"), exc)


def _name_the_previous(
    body: dict[str, Any], previous: StoredResponse, sent: dict[str, Any]
) -> None:
    """When the previous response's upstream keeps it, its model is sent the request as the
    client wrote it, naming the previous response (the upstream's cached prompt and reasoning
    carry over); every other model the whole conversation (``RESPONSES_PREVIOUS``)."""
    model = previous.kept_upstream()
    if model is None:
        return
    request = {**body[RESPONSES_REQUEST], "input": sent.get("input")}
    request["previous_response_id"] = sent.get("previous_response_id")
    body[RESPONSES_PREVIOUS] = {"model": model, "request": request}


class ResponsesEvents(TranslatedEvents):
    """Responses API stream events, passed through or translated as the chunks pass."""

    __slots__ = ()
