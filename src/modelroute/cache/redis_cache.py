"""The response cache in Redis, shared by every replica and worker: one string key per entry
under the deployment's prefix, expiring by Redis's own clock (``SET ... PX``); Redis's
``maxmemory-policy`` (e.g. ``allkeys-lru``) bounds it.

A Redis that cannot be reached is a miss (and an answer not kept), never a failed request:
``on_error(operation, outcome)`` counts each such time (``cache``, ``miss``/``skipped``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

ErrorHook = Callable[[str, str], None]


class RedisCache:
    def __init__(
        self, client: Redis, prefix: str = "modelroute:", on_error: ErrorHook | None = None
    ) -> None:
        self.client = client
        self.prefix = prefix + "cache:"
        self.on_error = on_error

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.client.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            self._failed("miss", exc)
            return None
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        try:
            await self.client.set(self.prefix + key, value, px=max(1, round(ttl_s * 1000)))
        except (RedisError, OSError) as exc:
            self._failed("skipped", exc)

    def _failed(self, outcome: str, exc: Exception) -> None:
        log.warning("response cache: Redis unreachable (%s): %s", outcome, exc)
        if self.on_error is not None:
            self.on_error("cache", outcome)

    async def aclose(self) -> None:
        await self.client.aclose()
