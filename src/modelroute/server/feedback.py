"""``POST /v1/feedback``: a quality signal for an earlier request, joined to its record.

Body: ``{"request_id": "...", "score": 0..1, "label": "correct", "source": "user",
"comment": "..."}``; a score or a label is required. Known labels (correct/incorrect,
good/bad, thumbs_up/thumbs_down, ...) count as 1 or 0.
"""

from __future__ import annotations

import math
from typing import Any

from modelroute.router import Router
from modelroute.server.asgi import Receive, Scope, Send, send_json
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


async def handle_feedback(router: Router, scope: Scope, receive: Receive, send: Send) -> None:
    from modelroute.server.app import read_json

    raw, problem = await read_json(receive)
    body, message = _parse(raw) if problem is None else (None, None)
    if problem is None and message is not None:
        problem = HttpError(400, "invalid_feedback", message, {}, {})
    if problem is not None or body is None:
        assert problem is not None
        await send_json(send, problem.status, problem.openai())
        return
    found = await router.feedback(
        body["request_id"],
        body.get("score"),
        body.get("label"),
        body.get("source"),
        body.get("comment"),
    )
    if not found:
        error = HttpError(404, "unknown_request", f"no request {body['request_id']!r}", {}, {})
        await send_json(send, 404, error.openai())
        return
    await send_json(send, 200, {"ok": True, "request_id": body["request_id"]})
