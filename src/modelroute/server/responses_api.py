"""``POST /v1/responses``: OpenAI's Responses API front door.

The request is translated once into the canonical body (``responses_front``), routed like
any chat request (same planner, limits, fallbacks, records and headers), and answered as a
``response`` object or the Responses API's stream events (``responses_reply``). A model
with the ``responses`` capability is sent the request as the client wrote it; any other its
Chat Completions translation. A request the translation cannot carry, on a route with no
model that serves the Responses API, is a 400 naming what cannot be bridged. Errors leave
in OpenAI's error format.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from modelroute.errors import InfeasibleError
from modelroute.planner.decision import Reason
from modelroute.request_fields import RESPONSES_NATIVE_ONLY, RESPONSES_REQUEST
from modelroute.router import Router
from modelroute.server.access import IDENTITY
from modelroute.server.asgi import Receive, Scope, Send, request_headers, send_json
from modelroute.server.errors import HttpError, http_error
from modelroute.server.responses_front import BridgeError, responses_to_chat
from modelroute.server.responses_reply import StreamToResponses, completion_to_response
from modelroute.server.sse import relay_sse
from modelroute.types import StreamChunk

ENDPOINT = "responses"


class ResponsesDoor:
    def __init__(self, router: Router) -> None:
        self.router = router

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        from modelroute.server.app import read_json

        raw, problem = await read_json(receive)
        body: dict[str, Any] | None = None
        if problem is None:
            try:
                body = responses_to_chat(raw)
            except BridgeError as exc:
                details = {"param": exc.param} if exc.param else {}
                problem = HttpError(400, "invalid_request", str(exc), details, {})
        if problem is not None or body is None:
            assert problem is not None
            record = self.router.record_rejected(problem.message, problem.status, ENDPOINT)
            problem.headers["x-modelroute-request-id"] = record.request_id
            await send_json(send, problem.status, problem.openai(), problem.headers.items())
            return
        streamed = bool(body.get("stream"))
        if streamed:  # the completed response carries usage: always ask for it
            body["stream_options"] = {"include_usage": True}
        headers = request_headers(scope)
        try:
            identity = scope.get(IDENTITY)
            if streamed:
                stream = await self.router.stream(
                    body, headers, endpoint=ENDPOINT, identity=identity
                )
            else:
                result = await self.router.chat(body, headers, endpoint=ENDPOINT, identity=identity)
        except Exception as exc:
            error = self._error(exc, body)
            await send_json(send, error.status, error.openai(), error.headers.items())
            return
        request = body[RESPONSES_REQUEST]
        created = int(time.time())
        if streamed:
            response_id = "resp_" + stream.record.request_id.replace("-", "")
            translator = StreamToResponses(
                request, response_id, self._model_id(stream.headers), created
            )
            await relay_sse(stream, ResponsesEvents(translator), scope, receive, send)
            return
        response_id = "resp_" + result.record.request_id.replace("-", "")
        model = result.completion.model_reported or self._model_id(result.headers)
        answer = completion_to_response(result.completion, request, response_id, model, created)
        await send_json(send, 200, answer, result.headers.items())

    def _error(self, exc: Exception, body: dict[str, Any]) -> HttpError:
        """A request only the Responses API can serve, on a route whose every model is only
        reachable through the bridge, is the client's to change: 400, naming why."""
        error = http_error(exc)
        reasons = body.get(RESPONSES_NATIVE_ONLY)
        if not reasons or not isinstance(exc, InfeasibleError):
            return error
        decision = exc.decision
        models = self.router.policy.models
        bridged_only = all(
            r.model in models and "responses" not in models[r.model].capabilities
            for r in decision.rejections
        )
        lacking = any(
            r.reason is Reason.MISSING_CAPABILITY and "responses" in (r.detail or "")
            for r in decision.rejections
        )
        if not (bridged_only and lacking):
            return error
        message = (
            f"this request cannot be bridged through Chat Completions, and no model of route "
            f"{decision.route!r} serves the Responses API (capability 'responses'): "
            + "; ".join(reasons)
        )
        param = str(reasons[0]).split(":", 1)[0]
        details = {"param": param, "rejections": error.details.get("rejections", [])}
        return HttpError(400, "not_bridgeable", message, details, error.headers)

    def _model_id(self, headers: Mapping[str, str]) -> str:
        """The model that answered, as its provider named it (else the policy's model id)."""
        reported = headers.get("x-modelroute-model-version")
        if reported:
            return reported
        name = headers.get("x-modelroute-model", "")
        model = self.router.policy.models.get(name)
        return model.model_id if model is not None else name


class ResponsesEvents:
    """Responses API stream events, passed through or translated as the chunks pass."""

    __slots__ = ("translator",)

    def __init__(self, translator: StreamToResponses) -> None:
        self.translator = translator

    def feed(self, chunk: StreamChunk, parts: list[bytes]) -> None:
        events = self.translator.feed(chunk)
        if events:
            parts.append(events)

    def end(self) -> bytes:
        return self.translator.finish()

    def error(self, failure_class: str, message: str) -> bytes:
        return self.translator.error(failure_class, message)
