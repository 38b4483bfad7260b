"""The shadow worker a router runs for a policy whose routes declare ``shadow:``."""

from __future__ import annotations

from typing import TYPE_CHECKING

from modelroute.engine import EngineDeps
from modelroute.policy import Policy
from modelroute.shadow import MemoryOutcomes, ShadowSender, ShadowSettings, shadowed

if TYPE_CHECKING:
    from modelroute.records.stores.base import Store


def shadow_sender(
    policy: Policy, deps: EngineDeps, store: Store | None, settings: ShadowSettings | None
) -> ShadowSender | None:
    """The shadow worker, for a policy whose routes declare ``shadow:``; its comparisons go
    to ``store``, else to memory."""
    if not shadowed(policy):
        return None
    outcomes = store if store is not None else MemoryOutcomes()
    return ShadowSender.for_router(
        policy,
        deps.providers,
        deps.api_keys,
        deps.clock,
        deps.rng,
        outcomes,
        settings or ShadowSettings(),
    )
