"""Pins in Redis, shared by every replica and worker (``serve --state redis://...``).

A pin is a string key ``<prefix>pin:<route>:<session>`` holding the model, with Redis's own
expiry as its TTL; each route has a sorted set ``<prefix>pins:<route>`` of its sessions by
last use, which bounds their number (the least recently used pins are deleted first). Each
read and write is one Lua script, so the bound holds under concurrent replicas. Like the
limits (``state/redis_state.py``), this is written for one Redis (or a primary and its
replicas), not Redis Cluster: a script touches keys it builds from the prefix.
"""

from __future__ import annotations

from redis.asyncio import Redis

# KEYS: the pin, the route's index. ARGV: session, ttl ms.
_GET = """
local model = redis.call('GET', KEYS[1])
if not model then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return false
end
local t = redis.call('TIME')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], tonumber(t[1]) + tonumber(t[2]) / 1000000, ARGV[1])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return model
"""

# KEYS: the pin, the route's index. ARGV: session, model, ttl ms, max sessions, pin key prefix.
_PUT = """
local ttl = tonumber(ARGV[3])
redis.call('SET', KEYS[1], ARGV[2], 'PX', ttl)
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZADD', KEYS[2], now, ARGV[1])
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now - ttl / 1000, 'LIMIT', 0, 64)
for _, s in ipairs(lapsed) do
  redis.call('DEL', ARGV[5] .. s)
  redis.call('ZREM', KEYS[2], s)
end
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local oldest = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #oldest, 2 do redis.call('DEL', ARGV[5] .. oldest[i]) end
end
redis.call('PEXPIRE', KEYS[2], ttl)
return 0
"""


class RedisPins:
    """``PinStore`` in Redis, every key under ``prefix``."""

    def __init__(self, client: Redis, prefix: str = "modelroute:") -> None:
        self.client = client
        self.prefix = prefix
        self._get = client.register_script(_GET)
        self._put = client.register_script(_PUT)

    def _keys(self, route: str, session: str) -> tuple[str, str, str]:
        pins = f"{self.prefix}pin:{route}:"
        return pins + session, f"{self.prefix}pins:{route}", pins

    async def get(self, route: str, session: str, ttl_s: float, max_sessions: int) -> str | None:
        pin, index, _ = self._keys(route, session)
        found = await self._get(keys=[pin, index], args=[session, _ms(ttl_s)])
        if found is None:
            return None
        return found.decode() if isinstance(found, bytes) else str(found)

    async def put(
        self, route: str, session: str, model: str, ttl_s: float, max_sessions: int
    ) -> None:
        pin, index, pins = self._keys(route, session)
        args: list[str | int] = [session, model, _ms(ttl_s), max_sessions, pins]
        await self._put(keys=[pin, index], args=args)

    async def aclose(self) -> None:
        await self.client.aclose()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))
