"""The status code each way a request can fail is answered with: one pure table.

The server answers with it; recording writes it into the record. Both read it here, so a
library caller's record and a gateway caller's record of the same failure say the same
thing. Nothing here speaks HTTP: no headers, no bodies (those are ``server/errors.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelroute.engine.walk import AllAttemptsFailed
from modelroute.errors import (
    InfeasibleError,
    LimitError,
    ModelrouteError,
    NotBridgeableError,
    RouteNotAllowedError,
    UnknownRouteError,
)
from modelroute.failures import FailureClass
from modelroute.planner.decision import Decision, Reason
from modelroute.request_fields import RESPONSES_NATIVE_ONLY

# All attempts failed: the status says what kind of failure decided it.
_FAILED = {
    FailureClass.TIMEOUT: 504,
    FailureClass.RATE_LIMITED: 503,
    FailureClass.OVERLOADED: 503,
    # The client's request is what failed: the same request fails on any model.
    FailureClass.BAD_REQUEST: 400,
    FailureClass.CONTEXT_LENGTH: 400,
    FailureClass.CONTENT_POLICY: 400,
    FailureClass.PREVIOUS_RESPONSE_UNKNOWN: 400,
}


def failed_status(cls: FailureClass) -> int:
    """A request whose every attempt failed, by the deciding failure's class."""
    return _FAILED.get(cls, 502)


def circuits_only(decision: Decision) -> bool:
    """Every candidate was rejected only because its circuit is open (or cooling down after
    a Retry-After): a passing condition, answered 503 with Retry-After, not 422."""
    rejected = {r.model for r in decision.rejections}
    cooling = {r.model for r in decision.rejections if r.reason.value == "circuit_open"}
    return bool(rejected) and cooling == rejected


def infeasible(
    decision: Decision, models: Mapping[str, Any], body: Mapping[str, Any]
) -> InfeasibleError:
    """The error of a decision with no step. A Responses API request that only the Responses
    API can serve (its body lists why under ``RESPONSES_NATIVE_ONLY``), refused because no
    candidate of the route serves it, is the client's to change: ``NotBridgeableError`` (400).
    Any other: ``InfeasibleError`` (422, or 503 when only circuits stand in the way)."""
    gaps = body.get(RESPONSES_NATIVE_ONLY)
    if not gaps or not decision.rejections:
        return InfeasibleError(decision)
    bridged_only = all(
        r.model in models and "responses" not in models[r.model].capabilities
        for r in decision.rejections
    )
    lacking = any(
        r.reason is Reason.MISSING_CAPABILITY and "responses" in (r.detail or "")
        for r in decision.rejections
    )
    if bridged_only and lacking:
        return NotBridgeableError(decision, [str(g) for g in gaps])
    return InfeasibleError(decision)


def error_status(err: ModelrouteError) -> int:
    """The status of a request that ended in ``err`` before any answer."""
    if isinstance(err, UnknownRouteError):
        return 404
    if isinstance(err, RouteNotAllowedError):
        return 403
    if isinstance(err, NotBridgeableError):
        return 400
    if isinstance(err, InfeasibleError):
        return 503 if circuits_only(err.decision) else 422
    if isinstance(err, AllAttemptsFailed):
        return failed_status(err.failure.cls)
    if isinstance(err, LimitError):
        return 429
    return 400  # RequestError and any other refusal of the request itself
