"""The one place errors become HTTP responses (status, headers, body) in the caller's format;
the status code of each failure is the shared table in ``statuses.py``, which the records
read too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from modelroute.engine import AllAttemptsFailed
from modelroute.errors import (
    InfeasibleError,
    LimitError,
    ModelrouteError,
    NotBridgeableError,
    RouteNotAllowedError,
    UnknownRouteError,
)
from modelroute.statuses import error_status

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",  # as OpenAI types a missing or wrong key
    403: "invalid_request_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout",
}
# Anthropic's error types by status, as its API documents them.
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


@dataclass(slots=True)
class HttpError:
    status: int
    code: str
    message: str
    details: dict[str, Any]
    headers: dict[str, str]

    def openai(self) -> dict[str, Any]:
        return {
            "error": {
                "message": self.message,
                "type": _OPENAI_TYPES.get(self.status, "server_error"),
                "param": None,
                "code": self.code,
                **self.details,
            }
        }

    def anthropic(self) -> dict[str, Any]:
        return {
            "type": "error",
            "error": {
                "type": _ANTHROPIC_TYPES.get(self.status, "api_error"),
                "message": self.message,
                **self.details,
            },
        }


def _record_headers(err: ModelrouteError) -> dict[str, str]:
    record = err.record
    if record is None:
        return {}
    headers = {"x-modelroute-request-id": record.request_id}
    if record.route:
        headers["x-modelroute-route"] = record.route
    attempts = record.attempt_count
    headers["x-modelroute-attempts"] = str(attempts)
    return headers


def http_error(err: Exception) -> HttpError:
    """The response to ``err``; its status is ``error_status``'s, as the record's is."""
    if not isinstance(err, ModelrouteError):
        return HttpError(500, "internal_error", "internal error; see the gateway log", {}, {})
    headers = _record_headers(err)
    status = error_status(err)
    if isinstance(err, UnknownRouteError):
        message = f"{err}; available routes and aliases: {', '.join(err.known)}"
        return HttpError(status, "model_not_found", message, {}, headers)
    if isinstance(err, RouteNotAllowedError):
        return HttpError(status, "route_not_allowed", str(err), {}, headers)
    if isinstance(err, InfeasibleError):
        return _infeasible(err, status, headers)
    if isinstance(err, AllAttemptsFailed):
        return _failed(err, status, headers)
    if isinstance(err, LimitError):
        headers["retry-after"] = str(max(1, round(err.retry_after_s)))
        return HttpError(status, err.code, str(err), dict(err.details), headers)
    return HttpError(status, "invalid_request", str(err), {}, headers)


def _infeasible(err: InfeasibleError, status: int, headers: dict[str, str]) -> HttpError:
    d = err.decision
    rejections = {"rejections": [r.to_dict() for r in d.rejections]}
    if isinstance(err, NotBridgeableError):  # a Responses API request (400): name the part
        details = {"param": err.param, **rejections}
        return HttpError(status, "not_bridgeable", str(err), details, headers)
    if status == 503:
        # Every candidate is only temporarily out (open circuit, Retry-After cool-down):
        # a passing condition, so 503 and not 422.
        message = f"route {d.route!r}: every candidate's circuit is open; retry shortly"
        return HttpError(
            status, "circuits_open", message, rejections, {**headers, "retry-after": "1"}
        )
    message = f"route {d.route!r}: no model satisfies the constraints"
    return HttpError(status, "infeasible", message, rejections, headers)


def _failed(err: AllAttemptsFailed, status: int, headers: dict[str, str]) -> HttpError:
    failure = err.failure
    if failure.retry_after_s is not None and status == 503:
        headers["retry-after"] = str(max(1, round(failure.retry_after_s)))
    attempts = [
        {
            "model": a.model,
            "outcome": a.outcome,
            "failure": a.failure,
            "status": a.status,
            "message": a.message,
            "latency_ms": round(a.latency_ms, 1),
        }
        for a in err.attempts
    ]
    return HttpError(
        status,
        failure.cls.value,
        f"all attempts failed; deciding failure: {failure.cls.value}: {failure.message}",
        {"attempts": attempts},
        headers,
    )
