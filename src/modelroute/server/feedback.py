"""``POST /v1/feedback``: a quality signal for an earlier request, joined to its record.

Body: ``{"request_id": "...", "score": 0..1, "label": "correct", "source": "user",
"comment": "..."}``; a score or a label is required. Known labels (correct/incorrect,
good/bad, thumbs_up/thumbs_down, ...) count as 1 or 0. A later post for the same request
replaces the earlier one.

Credentials, as for the chat endpoints (``Authorization: Bearer KEY`` or ``x-api-key``): the
key the request was made with, or the gateway's feedback token, which may rate any request.
Anything else is 401 (no key where the request had one) or 403 (another key).
"""

from __future__ import annotations

import hmac
import math
from collections.abc import Mapping
from typing import Any

from modelroute.feedback import TRUSTED, Caller, FeedbackResult
from modelroute.recording import client_key_id, presented_key
from modelroute.router import Router
from modelroute.server.asgi import Receive, Scope, Send, request_headers, send_json
from modelroute.server.errors import HttpError

_FIELDS = {"request_id", "score", "label", "source", "comment"}


def _parse(body: Any) -> tuple[dict[str, Any] | None, str | None]:
    if not isinstance(body, dict):
        return None, "the body must be a JSON object"
    unknown = set(body) - _FIELDS
    if unknown:
        return None, f"unknown field(s): {', '.join(sorted(unknown))}"
    request_id, score, label = body.get("request_id"), body.get("score"), body.get("label")
    if not isinstance(request_id, str) or not request_id:
        return None, "'request_id' is required (the x-modelroute-request-id of the answer)"
    if score is not None and (
        isinstance(score, bool)
        or not isinstance(score, int | float)
        or not math.isfinite(score)
        or not 0 <= score <= 1
    ):
        return None, "'score' must be a number between 0 and 1"
    if label is not None and not isinstance(label, str):
        return None, "'label' must be a string"
    if score is None and label is None:
        return None, "give a 'score' (0..1) or a 'label'"
    for key in ("source", "comment"):
        if body.get(key) is not None and not isinstance(body[key], str):
            return None, f"'{key}' must be a string"
    return body, None


def caller(headers: Mapping[str, str], token: str | None) -> Caller:
    """Who is posting: the feedback token's holder, or a client known by its key's hash."""
    key = presented_key(headers)
    if token is not None and key is not None and hmac.compare_digest(key.encode(), token.encode()):
        return TRUSTED
    return Caller(client_key_id(key))


def _refusal(result: FeedbackResult, request_id: str) -> HttpError:
    if result is FeedbackResult.NO_CREDENTIALS:
        return HttpError(
            401,
            "missing_api_key",
            "feedback on this request needs the API key it was made with (Authorization: "
            "Bearer KEY or x-api-key), or the gateway's feedback token",
            {},
            {"www-authenticate": "Bearer"},
        )
    if result is FeedbackResult.NOT_OWNER:
        return HttpError(
            403,
            "not_request_owner",
            "this request was made with another API key: feedback is accepted from the "
            "caller that made the request, or with the gateway's feedback token",
            {},
            {},
        )
    return HttpError(404, "unknown_request", f"no request {request_id!r}", {}, {})


async def handle_feedback(
    router: Router, scope: Scope, receive: Receive, send: Send, token: str | None = None
) -> None:
    from modelroute.server.app import read_json

    raw, problem = await read_json(receive)
    body, message = _parse(raw) if problem is None else (None, None)
    if problem is None and message is not None:
        problem = HttpError(400, "invalid_feedback", message, {}, {})
    if problem is not None or body is None:
        assert problem is not None
        await send_json(send, problem.status, problem.openai())
        return
    result = await router.feedback(
        body["request_id"],
        body.get("score"),
        body.get("label"),
        body.get("source"),
        body.get("comment"),
        caller=caller(request_headers(scope), token),
    )
    if result is FeedbackResult.STORED:
        await send_json(send, 200, {"ok": True, "request_id": body["request_id"]})
        return
    error = _refusal(result, body["request_id"])
    await send_json(send, error.status, error.openai(), error.headers.items())
