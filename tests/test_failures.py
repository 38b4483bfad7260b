"""``failures.classify``: every way an upstream can fail maps to exactly one class.

Bodies are the real shapes (OpenAI ``{"error": {message, type, param, code}}``, Anthropic
``{"type": "error", "error": {type, message}}``), copied from the providers' documentation
and the simulator's wire modules.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from modelroute.failures import FATAL, RETRYABLE, UNHEALTHY, FailureClass, classify, retry_after
from modelroute.types import UpstreamError

C = FailureClass


def openai_error(message: str, type_: str, code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})


def anthropic_error(type_: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": type_, "message": message}})


HTTP_CASES: list[tuple[str, int, bytes, FailureClass]] = [
    (
        "openai context length",
        400,
        openai_error(
            "This model's maximum context length is 8192 tokens.",
            "invalid_request_error",
            "context_length_exceeded",
        ),
        C.CONTEXT_LENGTH,
    ),
    (
        "context length by message only",
        400,
        openai_error("Your prompt is too long for this model", "invalid_request_error"),
        C.CONTEXT_LENGTH,
    ),
    (
        "anthropic prompt too long",
        400,
        anthropic_error("invalid_request_error", "prompt is too long: 210000 tokens > 200000"),
        C.CONTEXT_LENGTH,
    ),
    (
        "openai content filter",
        400,
        openai_error("flagged", "invalid_request_error", "content_filter"),
        C.CONTENT_POLICY,
    ),
    (
        "azure content policy by message",
        400,
        openai_error(
            "The response was filtered due to our content management policy.",
            "invalid_request_error",
        ),
        C.CONTENT_POLICY,
    ),
    (
        "openai rate limit",
        429,
        openai_error("Rate limit reached", "requests", "rate_limit_exceeded"),
        C.RATE_LIMITED,
    ),
    (
        "openai quota is a 429 too",
        429,
        openai_error("You exceeded your quota", "insufficient_quota", "insufficient_quota"),
        C.RATE_LIMITED,
    ),
    ("anthropic rate limit", 429, anthropic_error("rate_limit_error", "slow down"), C.RATE_LIMITED),
    (
        "openai bad key",
        401,
        openai_error("Incorrect API key provided", "invalid_request_error", "invalid_api_key"),
        C.AUTH,
    ),
    (
        "anthropic bad key",
        401,
        anthropic_error("authentication_error", "invalid x-api-key"),
        C.AUTH,
    ),
    ("anthropic permission", 403, anthropic_error("permission_error", "no access"), C.AUTH),
    ("bare 401", 401, b"", C.AUTH),
    (
        "openai overloaded 503",
        503,
        openai_error("The server is overloaded", "server_error", "overloaded"),
        C.OVERLOADED,
    ),
    (
        "a generic body type does not override a 503",
        503,
        openai_error("Service unavailable", "server_error"),
        C.OVERLOADED,
    ),
    ("anthropic 529", 529, anthropic_error("overloaded_error", "Overloaded"), C.OVERLOADED),
    (
        "openai 500",
        500,
        openai_error("The server had an error", "server_error"),
        C.SERVER_ERROR,
    ),
    ("anthropic 500", 500, anthropic_error("api_error", "Internal server error"), C.SERVER_ERROR),
    ("a 502 from a proxy, HTML body", 502, b"<html>Bad Gateway</html>", C.SERVER_ERROR),
    ("gateway timeout", 504, b"", C.TIMEOUT),
    ("request timeout", 408, b"", C.TIMEOUT),
    ("payload too large", 413, b"", C.CONTEXT_LENGTH),
    (
        "plain 400",
        400,
        openai_error("Invalid type for 'stop'", "invalid_request_error"),
        C.BAD_REQUEST,
    ),
    ("anthropic unknown model", 404, anthropic_error("not_found_error", "model: x"), C.BAD_REQUEST),
    ("unknown 4xx", 422, b"{}", C.BAD_REQUEST),
    (
        "responses: an unknown previous response",
        400,
        openai_error(
            "Previous response with id 'resp_1' not found.",
            "invalid_request_error",
            "previous_response_not_found",
        ),
        C.PREVIOUS_RESPONSE_UNKNOWN,
    ),
    ("error as a bare string", 500, orjson.dumps({"error": "boom"}), C.SERVER_ERROR),
]


@pytest.mark.parametrize(
    ("status", "body", "expected"), [c[1:] for c in HTTP_CASES], ids=[c[0] for c in HTTP_CASES]
)
def test_http_errors(status: int, body: bytes, expected: FailureClass) -> None:
    failure = classify(UpstreamError(status=status, body=body))
    assert failure.cls is expected
    assert failure.status == status
    assert failure.message


TRANSPORT_CASES = [
    ("TimeoutError", C.TIMEOUT),
    ("connect_error", C.CONNECT_ERROR),
    ("refused", C.CONNECT_ERROR),
    ("dns_error", C.CONNECT_ERROR),
    ("certificate_error", C.CONNECT_ERROR),
    ("disconnected", C.SERVER_ERROR),  # closed before or while answering
    ("reset", C.SERVER_ERROR),
    ("bad_http", C.INVALID_RESPONSE),
    ("bad_request", C.BAD_REQUEST),
    ("SomethingNew", C.CONNECT_ERROR),  # unknown transport trouble: nothing was answered
]


@pytest.mark.parametrize(("cause", "expected"), TRANSPORT_CASES)
def test_transport_errors_have_no_status(cause: str, expected: FailureClass) -> None:
    failure = classify(UpstreamError(cause=cause, detail="x"))
    assert failure.cls is expected and failure.status == 0


def test_a_200_that_is_not_an_answer() -> None:
    assert classify(UpstreamError(status=200, note="invalid_json")).cls is C.INVALID_RESPONSE
    assert classify(UpstreamError(status=200, note="empty")).cls is C.EMPTY_RESPONSE
    assert classify(UpstreamError(status=200)).cls is C.INVALID_RESPONSE


def test_stream_observations() -> None:
    cut = UpstreamError(cause="disconnected", note="stream_cut")
    assert classify(cut).cls is C.SERVER_ERROR
    bad_event = UpstreamError(note="invalid_json", body=b'{"id": "x", "cho')
    assert classify(bad_event).cls is C.INVALID_RESPONSE


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"error": {"message": "The server had an error", "type": "server_error"}}, C.SERVER_ERROR),
        ({"type": "error", "error": {"type": "overloaded_error", "message": "x"}}, C.OVERLOADED),
        ({"error": {"message": "x", "code": "rate_limit_exceeded"}}, C.RATE_LIMITED),
    ],
)
def test_error_events_inside_a_stream(event: dict[str, Any], expected: FailureClass) -> None:
    failure = classify(UpstreamError(note="stream_error_event", body=orjson.dumps(event)))
    assert failure.cls is expected
    assert failure.message


def test_retry_after_headers() -> None:
    assert retry_after({"Retry-After": "2"}) == 2.0
    assert retry_after({"retry-after-ms": "1500", "retry-after": "2"}) == 1.5  # finer wins
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None  # dates ignored
    assert retry_after({"retry-after": "-1"}) is None
    assert retry_after({}) is None
    limited = UpstreamError(
        status=429,
        body=openai_error("slow down", "requests", "rate_limit_exceeded"),
        headers={"retry-after-ms": "250", "retry-after": "1"},
    )
    assert classify(limited).retry_after_s == 0.25


def test_what_each_class_means_for_routing() -> None:
    assert frozenset({C.AUTH, C.BAD_REQUEST, C.PREVIOUS_RESPONSE_UNKNOWN}) == FATAL
    # a previous response the upstream no longer keeps says nothing about its health
    assert C.PREVIOUS_RESPONSE_UNKNOWN not in UNHEALTHY
    assert not (FATAL & RETRYABLE)
    assert C.RATE_LIMITED in RETRYABLE and C.RATE_LIMITED not in UNHEALTHY  # busy, not ill
    # Empty answers fall back but never open a circuit: a client can cause them at will.
    assert C.EMPTY_RESPONSE not in UNHEALTHY and C.EMPTY_RESPONSE not in RETRYABLE
    assert C.CONTEXT_LENGTH not in RETRYABLE | FATAL | UNHEALTHY  # try a larger window
