"""The response cache in Redis, shared by every replica and worker: one string key per entry
under the deployment's prefix, expiring by Redis's own clock (``SET ... PX``); Redis's
``maxmemory-policy`` (e.g. ``allkeys-lru``) bounds it. The Responses API's stored responses
use the same store under another ``namespace`` (``server/responses_store.py``).

A Redis that cannot be reached is a miss (and an answer not kept), never a failed request:
``on_error(operation, outcome)`` counts each such time (``operation``, the namespace unless
given; ``miss``/``skipped``). With ``fail_open=False`` (stored responses, where "not there"
would mislead a client) each such time raises ``StoreUnreachable`` instead, and a read or
delete counts as ``closed`` (refused).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.exceptions import RedisError

from modelroute.cache.gate import StoreUnreachable

log = logging.getLogger(__name__)

ErrorHook = Callable[[str, str], None]


class RedisCache:
    def __init__(
        self,
        client: Redis,
        prefix: str = "modelroute:",
        on_error: ErrorHook | None = None,
        namespace: str = "cache",
        fail_open: bool = True,
        operation: str | None = None,
    ) -> None:
        self.client = client
        self.prefix = f"{prefix}{namespace}:"
        self.namespace = namespace
        self.on_error = on_error
        self.fail_open = fail_open
        self.operation = operation or namespace  # what ``on_error`` calls it
        self._refused = "miss" if fail_open else "closed"  # a read or delete that failed

    async def get(self, key: str) -> bytes | None:
        try:
            value = await self.client.get(self.prefix + key)
        except (RedisError, OSError) as exc:
            self._failed(self._refused, exc)
            return None
        return value if isinstance(value, bytes) else None

    async def put(self, key: str, value: bytes, ttl_s: float) -> None:
        try:
            await self.client.set(self.prefix + key, value, px=max(1, round(ttl_s * 1000)))
        except (RedisError, OSError) as exc:
            self._failed("skipped", exc)

    async def delete(self, key: str) -> bool:
        """Whether there was an entry to delete (an unreachable Redis: False, failing open)."""
        try:
            return bool(await self.client.delete(self.prefix + key))
        except (RedisError, OSError) as exc:
            self._failed("skipped" if self.fail_open else "closed", exc)
            return False

    def _failed(self, outcome: str, exc: Exception) -> None:
        log.warning("%s: Redis unreachable (%s): %s", self.namespace, outcome, exc)
        if self.on_error is not None:
            self.on_error(self.operation, outcome)
        if not self.fail_open:
            raise StoreUnreachable(f"the {self.namespace} store (Redis) cannot be reached") from exc

    async def aclose(self) -> None:
        await self.client.aclose()
