"""Failure classes and ``classify``: the one place that reads provider error codes and text.

Every ``UpstreamError`` maps to exactly one ``FailureClass``; retries and fallbacks decide on
the class only, never on a raw status code or message. Standard library only.

Precedence, first that applies:
1. no HTTP status: the transport's cause (timeout, connect error, reset) or the provider's
   observation of a 200 (``invalid_json`` → invalid_response, ``empty`` → empty_response,
   ``stream_cut`` → server_error, ``stream_error_event`` → the event's error type);
2. a specific error code or type in the body (OpenAI ``error.code`` / ``error.type``,
   Anthropic ``error.type``), and message phrases for context length and content policy;
3. the HTTP status (a generic body type such as ``server_error`` says less than a 503).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from modelroute.types import UpstreamError


class FailureClass(StrEnum):
    TIMEOUT = "timeout"
    CONNECT_ERROR = "connect_error"
    RATE_LIMITED = "rate_limited"
    OVERLOADED = "overloaded"
    SERVER_ERROR = "server_error"
    CONTEXT_LENGTH = "context_length"
    CONTENT_POLICY = "content_policy"
    AUTH = "auth"
    BAD_REQUEST = "bad_request"
    EMPTY_RESPONSE = "empty_response"
    INVALID_RESPONSE = "invalid_response"
    # An upstream that keeps Responses API responses does not know the one the request
    # named (``previous_response_not_found``): expired, deleted, or never kept there.
    PREVIOUS_RESPONSE_UNKNOWN = "previous_response_unknown"


@dataclass(frozen=True, slots=True)
class Failure:
    cls: FailureClass
    status: int
    message: str
    retry_after_s: float | None = None


# What the gateway does with each class when a route does not say otherwise.
RETRYABLE = frozenset(
    {
        FailureClass.TIMEOUT,
        FailureClass.CONNECT_ERROR,
        FailureClass.RATE_LIMITED,
        FailureClass.OVERLOADED,
        FailureClass.SERVER_ERROR,
    }
)
# Fail fast: the same request would fail the same way on any model. (A request whose previous
# response one upstream no longer keeps is first resent to it whole, when the gateway holds
# that conversation: ``engine.walk``.)
FATAL = frozenset(
    {FailureClass.AUTH, FailureClass.BAD_REQUEST, FailureClass.PREVIOUS_RESPONSE_UNKNOWN}
)
# Counted against a model's circuit breaker: the model (or its provider) is unwell.
# Not empty_response: a client can cause one at will (a stop sequence matching at once),
# and one client must not be able to open a model's circuit for everyone.
UNHEALTHY = frozenset(
    {
        FailureClass.TIMEOUT,
        FailureClass.CONNECT_ERROR,
        FailureClass.OVERLOADED,
        FailureClass.SERVER_ERROR,
        FailureClass.INVALID_RESPONSE,
    }
)

# The transport's causes (providers/http.py and connection.py).
_TRANSPORT = {
    "TimeoutError": FailureClass.TIMEOUT,
    "connect_error": FailureClass.CONNECT_ERROR,
    "refused": FailureClass.CONNECT_ERROR,
    "dns_error": FailureClass.CONNECT_ERROR,
    "certificate_error": FailureClass.CONNECT_ERROR,
    "disconnected": FailureClass.SERVER_ERROR,  # closed before or while answering
    "reset": FailureClass.SERVER_ERROR,
    "bad_http": FailureClass.INVALID_RESPONSE,  # not HTTP, or a body that cannot be decoded
    "bad_request": FailureClass.BAD_REQUEST,  # a request we could not send (a bad header)
}

_NOTES = {
    "invalid_json": FailureClass.INVALID_RESPONSE,
    "empty": FailureClass.EMPTY_RESPONSE,
    "stream_cut": FailureClass.SERVER_ERROR,
}

_CODES = {
    # OpenAI error.code / error.type
    "context_length_exceeded": FailureClass.CONTEXT_LENGTH,
    "string_above_max_length": FailureClass.CONTEXT_LENGTH,
    "content_filter": FailureClass.CONTENT_POLICY,
    "content_policy_violation": FailureClass.CONTENT_POLICY,
    "rate_limit_exceeded": FailureClass.RATE_LIMITED,
    "insufficient_quota": FailureClass.RATE_LIMITED,
    "invalid_api_key": FailureClass.AUTH,
    "overloaded": FailureClass.OVERLOADED,
    # Anthropic error.type
    "overloaded_error": FailureClass.OVERLOADED,
    "rate_limit_error": FailureClass.RATE_LIMITED,
    "authentication_error": FailureClass.AUTH,
    "permission_error": FailureClass.AUTH,
    "not_found_error": FailureClass.BAD_REQUEST,
    "request_too_large": FailureClass.CONTEXT_LENGTH,
    # OpenAI's Responses API: a previous_response_id it does not keep
    "previous_response_not_found": FailureClass.PREVIOUS_RESPONSE_UNKNOWN,
}

_CONTEXT_PHRASES = (
    "maximum context length",
    "prompt is too long",
    "context_length_exceeded",
    "exceed context limit",
    "context window",
    "too many tokens",
)
_POLICY_PHRASES = ("content management policy", "content_policy", "safety system", "content filter")

_STATUS = {
    401: FailureClass.AUTH,
    403: FailureClass.AUTH,
    408: FailureClass.TIMEOUT,
    413: FailureClass.CONTEXT_LENGTH,
    429: FailureClass.RATE_LIMITED,
    503: FailureClass.OVERLOADED,
    529: FailureClass.OVERLOADED,
    504: FailureClass.TIMEOUT,
}


def _error_object(body: bytes) -> tuple[str, str, str]:
    """(code, type, message) from an OpenAI- or Anthropic-shaped error body, '' if absent."""
    try:
        data: Any = json.loads(body) if body else None
    except ValueError:
        return "", "", body[:300].decode("utf-8", "replace")
    err = data.get("error") if isinstance(data, dict) else None
    if isinstance(err, str):
        return "", "", err
    if not isinstance(err, dict):
        return "", "", ""
    code = err.get("code")
    return (
        str(code) if code is not None else "",
        str(err.get("type") or ""),
        str(err.get("message") or ""),
    )


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (seconds; dates ignored)."""
    lowered = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        raw = lowered.get(name)
        if raw is None:
            continue
        try:
            value = float(raw) * scale
        except ValueError:
            continue
        if value >= 0:
            return value
    return None


def _from_body(status: int, body: bytes) -> tuple[FailureClass | None, str]:
    code, kind, message = _error_object(body)
    for key in (code, kind):
        if key in _CODES:
            return _CODES[key], message
    lowered = message.lower()
    if any(p in lowered for p in _CONTEXT_PHRASES):
        return FailureClass.CONTEXT_LENGTH, message
    if any(p in lowered for p in _POLICY_PHRASES):
        return FailureClass.CONTENT_POLICY, message
    return None, message


def classify(error: UpstreamError) -> Failure:
    """The one mapping from what went wrong upstream to a ``FailureClass``."""
    wait = retry_after(error.headers)
    if not error.status:
        if error.note == "stream_error_event":
            cls, message = _from_body(0, error.body)
            return Failure(cls or FailureClass.SERVER_ERROR, 0, message or str(error), wait)
        if error.note in _NOTES:
            return Failure(_NOTES[error.note], 0, str(error))
        cls = _TRANSPORT.get(error.cause or "", FailureClass.CONNECT_ERROR)
        return Failure(cls, 0, str(error))
    if 200 <= error.status < 300:
        return Failure(
            _NOTES.get(error.note or "", FailureClass.INVALID_RESPONSE), error.status, str(error)
        )
    cls, message = _from_body(error.status, error.body)
    if cls is None:
        cls = _STATUS.get(error.status)
    if cls is None:
        cls = FailureClass.SERVER_ERROR if error.status >= 500 else FailureClass.BAD_REQUEST
    return Failure(cls, error.status, message or f"HTTP {error.status}", wait)
