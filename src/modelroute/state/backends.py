"""Choosing the state backend: ``memory`` (each process its own, the default) or a
``redis://`` URL (every replica and worker the same breakers, rolling statistics, rate limits,
budgets and response cache)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from modelroute.cache import ResponseCache
from modelroute.policy.compiled import Policy
from modelroute.state.admission import Admission, ErrorHook
from modelroute.state.breakers import Breakers
from modelroute.state.circuits import CircuitState

if TYPE_CHECKING:  # the redis client (and the OpenTelemetry it imports) only for redis://
    from modelroute.state.shared_stats import SharedStats

MEMORY = "memory"


class StateBackend(NamedTuple):
    circuits: CircuitState | None  # None: the router's own in-process breakers
    limits: Admission | None  # None: the router counts its routes' limits in process
    cache: ResponseCache | None = None  # None: the router's response cache in process memory
    # a record sink filling the router's rolling statistics from every replica's attempts
    # (``attach`` it to ``router.rolling``); None: each process its own
    stats: SharedStats | None = None


def check_state_url(url: str) -> str:
    """``memory`` or ``redis://`` / ``rediss://`` / ``unix://``; anything else is an error
    now (an unreachable Redis is not: limits then fail open or closed, as set)."""
    if url == MEMORY or url.startswith(("redis://", "rediss://", "unix://")):
        return url
    raise ValueError(f"{url!r} is neither 'memory' nor a redis:// URL")


def split_prefix(url: str, default: str) -> tuple[str, str]:
    """``redis://host/0?prefix=team-a:``: the keys' prefix, taken out of the URL (several
    deployments may share one Redis under different prefixes)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    prefix = next((v for k, v in query if k == "prefix"), default)
    rest = urlencode([(k, v) for k, v in query if k != "prefix"])
    return urlunsplit(parts._replace(query=rest)), prefix


def open_state(
    url: str,
    policy: Policy,
    *,
    prefix: str = "modelroute:",
    on_error: ErrorHook | None = None,
    clock: Callable[[], float] | None = None,
) -> StateBackend:
    check_state_url(url)
    if url == MEMORY:
        return StateBackend(None, None)
    url, prefix = split_prefix(url, prefix)
    from modelroute.cache.redis_cache import RedisCache
    from modelroute.state.redis_state import RedisCounters, connect
    from modelroute.state.shared_circuits import SharedBreakers
    from modelroute.state.shared_stats import SharedStats

    settings = {m.name: m.breaker for m in policy.models.values()}
    circuits = SharedBreakers(
        Breakers(settings), connect(url), settings, prefix=prefix, on_error=on_error
    )
    counters = RedisCounters(connect(url), prefix)
    limits = Admission(counters, clock=clock or time.time, on_error=on_error)
    cache = RedisCache(connect(url), prefix, on_error=on_error)
    stats = SharedStats(connect(url), prefix=prefix, on_error=on_error)
    return StateBackend(circuits, limits, cache, stats)
