"""The exception tree of modelroute.

::

    ModelrouteError
    ├── PolicyError            the policy could not be loaded; carries every problem found
    ├── RequestError           the client's request is malformed or names nothing routable
    │   ├── UnknownRouteError  no route, alias or model has the requested name
    │   └── RouteNotAllowedError  the caller's API key may not use the selected route
    ├── InfeasibleError        no candidate satisfies the route's constraints (on_infeasible=reject)
    │   └── NotBridgeableError a Responses API request that only the Responses API can serve,
    │                          on a route where no model serves it (400: the client's to change)
    └── LimitError             a rate limit or a budget refused the request (429)
        ├── RateLimitedError   over a requests or tokens per minute limit
        └── BudgetExceededError the request's estimated cost does not fit what is left

Only ``server/`` maps these to HTTP statuses and only the CLI (``cli*.py``) to exit codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a policy, located in its source file."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str
    hint: str | None = None
    severity: str = "error"

    def render(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        located = f"{where}: {self.severity}: "
        if self.path:
            located += f"{self.path}: "
        text = located + self.message
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class ModelrouteError(Exception):
    """Base class of every error modelroute raises on purpose. ``record`` is the request's
    record when the error ended a routed request (set by the router)."""

    record: Any = None


class PolicyError(ModelrouteError):
    """A policy failed to load. ``problems`` lists everything found, not only the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(p.render() for p in problems))


class RequestError(ModelrouteError):
    """The request cannot be routed as given."""


class UnknownRouteError(RequestError):
    def __init__(self, name: str, known: list[str]) -> None:
        self.name = name
        self.known = known
        if name:
            super().__init__(f"no route, alias or model named {name!r}")
        else:
            super().__init__(
                "the request names no model, no task route matched, no route's "
                "match rules hold, and the policy has no default route"
            )


class RouteNotAllowedError(RequestError):
    """The caller's API key is not allowed on the route the request selected (403)."""

    def __init__(self, route: str, key_name: str) -> None:
        self.route = route
        super().__init__(f"this API key ({key_name or 'unnamed'}) may not use route {route!r}")


class InfeasibleError(ModelrouteError):
    """No candidate model satisfies the route's constraints."""

    def __init__(self, decision: Any) -> None:  # a planner Decision; typed loosely to keep
        self.decision = decision  # this module free of our other modules
        super().__init__(f"route {decision.route!r}: no model satisfies the constraints")


class NotBridgeableError(InfeasibleError):
    """A Responses API request the Chat Completions bridge cannot carry (``gaps``: each part,
    with where it was found), on a route whose every candidate lacks the ``responses``
    capability. Infeasible, but the request is what has to change: answered 400, not 422."""

    def __init__(self, decision: Any, gaps: list[str]) -> None:
        self.decision = decision
        self.gaps = gaps
        ModelrouteError.__init__(
            self,
            "this request cannot be bridged through Chat Completions, and no model of route "
            f"{decision.route!r} serves the Responses API (capability 'responses'): "
            + "; ".join(gaps),
        )

    @property
    def param(self) -> str:
        """The first part that cannot be bridged, as OpenAI's errors name a parameter."""
        return self.gaps[0].split(":", 1)[0] if self.gaps else ""


class LimitError(ModelrouteError):
    """A limit refused the request before any call. ``details`` says which limit, with its
    numbers (for the caller's error body); ``retry_after_s``: when trying again may work."""

    code = "limit"

    def __init__(self, message: str, details: dict[str, Any], retry_after_s: float) -> None:
        self.details = details
        self.retry_after_s = retry_after_s
        super().__init__(message)


class RateLimitedError(LimitError):
    code = "rate_limited"


class BudgetExceededError(LimitError):
    code = "budget_exceeded"
