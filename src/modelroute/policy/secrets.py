"""API keys from the environment, by the ``env:NAME`` references a policy holds.

Kept apart so the rest of ``policy/`` never reads the environment; keys live only in memory
and are never logged, recorded or shown.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from modelroute.policy.compiled import Policy


def resolve_api_keys(
    policy: Policy, environ: Mapping[str, str] | None = None
) -> dict[str, str | None]:
    env = os.environ if environ is None else environ
    return {
        name: env.get(m.api_key_env) if m.api_key_env else None for name, m in policy.models.items()
    }


def missing_api_keys(policy: Policy, environ: Mapping[str, str] | None = None) -> list[str]:
    """Names of the environment variables the policy refers to that are not set."""
    env = os.environ if environ is None else environ
    return sorted(
        {
            m.api_key_env
            for m in policy.models.values()
            if m.api_key_env and not env.get(m.api_key_env)
        }
    )
