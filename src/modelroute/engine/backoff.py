"""How long to wait before a retry: exponential backoff with full jitter, never shorter than
the provider's ``Retry-After``."""

from __future__ import annotations

import random

from modelroute.policy.compiled import RetryPolicy


def backoff_s(
    policy: RetryPolicy, retry: int, retry_after_s: float | None, rng: random.Random
) -> float:
    """Seconds before retry number ``retry`` (0-based). Full jitter spreads retries of many
    clients over the whole window instead of bunching them at its edge."""
    ceiling = min(policy.max_backoff_ms, policy.backoff_ms * (2**retry)) / 1000
    wait = rng.uniform(0, ceiling)
    if retry_after_s is not None:
        wait = max(wait, retry_after_s)
    return wait
