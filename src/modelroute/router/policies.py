"""The policies a router serves: the current one and, while a canary runs, the canary beside
it; which one a request gets, and what each needs before it serves (its models' providers,
the circuit breakers' settings)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from modelroute.canary import BASELINE, CANARY, Canary
from modelroute.identity import ClientIdentity
from modelroute.policy import Policy
from modelroute.providers.base import Provider
from modelroute.providers.http import Transport
from modelroute.providers.registry import build_providers
from modelroute.state.circuits import CircuitState


def providers_for(
    transport: Transport, policy: Policy, given: Mapping[str, Provider] | None
) -> dict[str, Provider]:
    """The providers of ``policy``'s models (``given`` ones winning over the built-in and
    installed kinds); raises ``PolicyError`` if a kind is unknown."""
    needed = [(m.name, m.provider) for m in policy.models.values()]
    return build_providers(transport, needed, given, policy.source)


def configure_breakers(breakers: CircuitState, policies: Iterable[Policy]) -> None:
    """The breakers take the policies' settings (when the circuit state can change them);
    the first policy's settings win over the later ones'."""
    configure = getattr(breakers, "configure", None)
    if configure is not None:
        configure({m.name: m.breaker for p in [*policies][::-1] for m in p.models.values()})


def arm(
    policy: Policy,
    canary: Canary | None,
    body: Any,
    headers: Mapping[str, str] | None,
    identity: ClientIdentity | None,
    request_id: str,
) -> tuple[Policy, str | None]:
    """The policy for one request, and its arm while a canary runs."""
    if canary is None or not isinstance(body, dict):
        return policy, None
    if canary.arm(body, headers, identity, request_id) == CANARY:
        return canary.policy, CANARY
    return policy, BASELINE


class LearnedRoutes:
    """Whether a policy (by hash) has a learned route, whose scorer reads the prompt's text
    before planning (``learned.decide``); policies change on reload and canary."""

    def __init__(self) -> None:
        self._known: dict[str, bool] = {}

    def __call__(self, policy: Policy) -> bool:
        found = self._known.get(policy.hash)
        if found is None:
            found = self._known[policy.hash] = any(
                r.learned is not None for r in policy.routes.values()
            )
        return found
