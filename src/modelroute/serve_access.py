"""What ``serve`` adds around the router for keys and policy rollouts: the key ring and the
check of callers (``server/access.py``), the policy lifecycle (SIGHUP, canary) and its sync
through Redis, and the admin API over both."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from modelroute.router import Router
    from modelroute.server.access import Access
    from modelroute.server.admin import AdminApi
    from modelroute.server.app import Service


@dataclass(frozen=True, slots=True)
class AccessSettings:
    """``keys``: ``off`` (callers are not checked), ``optional`` (a known key gives its
    identity, others pass as before) or ``required`` (401 without an active key)."""

    keys: str = "off"
    keys_refresh_s: float = 5.0
    policy_path: str | None = None
    canary_path: str | None = None
    canary_percent: float = 5.0
    canary_sticky: str = "key"
    policy_sync_url: str | None = None


def access_parts(
    router: Router, store_url: str | None, admin_token: str | None, settings: AccessSettings
) -> tuple[Access | None, AdminApi, list[Service]]:
    """The caller check (``None``: keys off), the admin API, and the services they need
    (started in order, after the router)."""
    from modelroute.keys import KeyRing, open_key_store
    from modelroute.lifecycle import PolicyLifecycle
    from modelroute.server.access import Access
    from modelroute.server.admin import AdminApi
    from modelroute.server.ui_auth import AdminToken

    services: list[Service] = []
    lifecycle = PolicyLifecycle(
        router,
        settings.policy_path,
        canary_path=settings.canary_path,
        canary_percent=settings.canary_percent,
        sticky=settings.canary_sticky,
    )
    services.append(lifecycle)
    if settings.policy_sync_url is not None:
        from modelroute.policy_sync import PolicySync
        from modelroute.state.backends import split_prefix

        url, prefix = split_prefix(settings.policy_sync_url, "modelroute:")
        services.append(PolicySync(url, lifecycle, prefix))
    access, keys = None, None
    if store_url is not None and (settings.keys != "off" or admin_token is not None):
        store = open_key_store(store_url)
        ring = KeyRing(store, settings.keys_refresh_s)
        services.append(ring)
        keys = (store, ring)
        if settings.keys != "off":
            access = Access(ring, required=settings.keys == "required")
    elif settings.keys != "off":
        raise ValueError("API keys are kept in the record store: --keys needs a --store")
    token = AdminToken(admin_token) if admin_token else None
    return access, AdminApi(token, keys, lifecycle), services
