"""What the translating front doors (Anthropic Messages, OpenAI Responses) share.

Each door translates the client's request into the canonical body and the answer back; in
between they do the same things, in the door's own error format: record and refuse a request
that cannot be translated, route the body (streamed or whole), and name the model that
answered.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

from modelroute.router import ChatResult, ChatStream, Router
from modelroute.server.access import IDENTITY
from modelroute.server.asgi import Receive, Scope, Send, request_headers, send_json
from modelroute.server.errors import HttpError, http_error
from modelroute.server.responses_checks import BridgeError
from modelroute.types import StreamChunk

# An error as the door's body (``HttpError.openai`` or ``HttpError.anthropic``).
Render = Callable[[HttpError], dict[str, Any]]


async def read_translated(
    router: Router,
    receive: Receive,
    send: Send,
    translate: Callable[[Any], dict[str, Any]],
    refused: type[ValueError],
    endpoint: str,
    render: Render,
    prepare: Callable[[dict[str, Any]], Awaitable[dict[str, Any]]] | None = None,
) -> dict[str, Any] | None:
    """The client's body, read, passed through ``prepare`` (if any) and translated into the
    canonical one; None when it could not be (unreadable, or ``prepare`` or ``translate``
    raised ``refused``: a 400, or the ``status``, ``param`` and ``code`` a ``BridgeError``
    names), the refusal recorded and sent."""
    from modelroute.server.app import read_json

    raw, problem = await read_json(receive)
    body: dict[str, Any] | None = None
    if problem is None:
        try:
            body = translate(raw if prepare is None else await prepare(raw))
        except refused as exc:
            param = exc.param if isinstance(exc, BridgeError) else None
            details = {"param": param} if param else {}
            code = exc.code if isinstance(exc, BridgeError) else "invalid_request"
            status = exc.status if isinstance(exc, BridgeError) else 400
            problem = HttpError(status, code, str(exc), details, {})
    if problem is not None or body is None:
        assert problem is not None
        await reject(router, send, problem, endpoint, render)
        return None
    return body


async def reject(
    router: Router, send: Send, problem: HttpError, endpoint: str, render: Render
) -> None:
    """A request refused before routing: recorded, and answered with its request id."""
    record = router.record_rejected(problem.message, problem.status, endpoint)
    problem.headers["x-modelroute-request-id"] = record.request_id
    await send_json(send, problem.status, render(problem), problem.headers.items())


async def route(
    router: Router, scope: Scope, send: Send, body: dict[str, Any], endpoint: str, render: Render
) -> ChatResult | ChatStream | None:
    """The body routed, streamed when it asks to be; None when routing failed (the error
    already sent)."""
    headers = request_headers(scope)
    try:
        identity = scope.get(IDENTITY)
        if body.get("stream"):
            return await router.stream(body, headers, endpoint=endpoint, identity=identity)
        return await router.chat(body, headers, endpoint=endpoint, identity=identity)
    except Exception as exc:
        error = http_error(exc)
        await send_json(send, error.status, render(error), error.headers.items())
        return None


def answering_model(router: Router, headers: Mapping[str, str]) -> str:
    """The model that answered, as its provider named it (the body's ``model`` on every
    door; the route and the policy's name for the model are in x-modelroute-* headers).
    The policy's ``model_id`` stands in when the provider named none."""
    reported = headers.get("x-modelroute-model-version")
    if reported:
        return reported
    name = headers.get("x-modelroute-model", "")
    model = router.policy.models.get(name)
    return model.model_id if model is not None else name


class Translator(Protocol):
    def feed(self, chunk: StreamChunk, /) -> bytes: ...

    def finish(self) -> bytes: ...

    def error(self, kind: str, message: str, /) -> bytes: ...


class TranslatedEvents:
    """A door's stream events (an ``sse.Encoder``), translated from the chunks as they pass.
    The error event carries the failure class as its kind (a door with other kinds says
    how in ``error``)."""

    __slots__ = ("translator",)

    def __init__(self, translator: Translator) -> None:
        self.translator = translator

    def feed(self, chunk: StreamChunk, parts: list[bytes]) -> None:
        events = self.translator.feed(chunk)
        if events:
            parts.append(events)

    def end(self) -> bytes:
        return self.translator.finish()

    def error(self, failure_class: str, message: str) -> bytes:
        return self.translator.error(failure_class, message)
