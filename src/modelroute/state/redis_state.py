"""Rate limits and budgets counted in Redis, shared by every replica and worker.

Each check is one Lua script: Redis runs it atomically, so two replicas can never both take
the last request of a minute or the last dollar of a budget. Times are Redis's own clock
(``TIME`` inside the script), so the replicas' clocks need not agree. All the keys of one
request are passed to one script: with Redis Cluster they would have to share a hash slot
(a single Redis or a primary with replicas is what this is written for).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from modelroute.state.limits import (
    AdmitVerdict,
    BudgetCheck,
    BudgetVerdict,
    RateCheck,
    RateVerdict,
)

# Lua shared by the scripts below (each is registered with these functions before it).
# A rate limit's hash: fields r:<second> (requests) and t:<second> (tokens). A budget's hash:
# field 'spent', and r:<request id> = "<usd> <until>" per live reservation.
_FUNCTIONS = """
-- The rate limit's minute: drops older slices; nil if one more request of ``tokens`` fits,
-- else the seconds until its oldest counted request leaves the minute (as text).
local function rate_refusal(key, sec, now, rlim, tlim, tokens)
  local oldest = sec - 59
  local flat = redis.call('HGETALL', key)
  local reqs, toks, first, stale = 0, 0, sec, {}
  for j = 1, #flat, 2 do
    local f = flat[j]
    local s = tonumber(string.sub(f, 3))
    if s < oldest then
      stale[#stale + 1] = f
    else
      if s < first then first = s end
      if string.sub(f, 1, 1) == 'r' then reqs = reqs + tonumber(flat[j + 1])
      else toks = toks + tonumber(flat[j + 1]) end
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  if (rlim >= 0 and reqs + 1 > rlim) or (tlim >= 0 and toks + tokens > tlim) then
    return tostring(60 - (now - first))
  end
  return nil
end

-- Counts one request of ``tokens`` in the rate limit's current second.
local function rate_take(key, sec, tokens)
  redis.call('HINCRBY', key, 'r:' .. sec, 1)
  if tokens ~= 0 then redis.call('HINCRBY', key, 't:' .. sec, tokens) end
  redis.call('EXPIRE', key, 61)
end

-- Adds ``tokens`` (a number or its text) to the rate limit's current second.
local function rate_add(key, sec, tokens)
  redis.call('HINCRBY', key, 't:' .. sec, tokens)
  redis.call('EXPIRE', key, 61)
end

-- What the budget has left (``limit`` minus its spend and live reservations); drops the
-- reservations that lapsed.
local function budget_left(key, limit, now)
  local flat = redis.call('HGETALL', key)
  local spent, held, stale = 0, 0, {}
  for j = 1, #flat, 2 do
    local f = flat[j]
    if f == 'spent' then
      spent = tonumber(flat[j + 1])
    else
      local amount, untl = string.match(flat[j + 1], '^(%S+) (%S+)$')
      if tonumber(untl) <= now then stale[#stale + 1] = f else held = held + tonumber(amount) end
    end
  end
  if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  return limit - spent - held
end

-- KEYS[first..last] are budgets, budget i's limit in ARGV[base + 2 * i]: each one's
-- remainder (as text) and the index of the first that refuses ``usd`` (0: none).
local function budgets_check(first, last, base, usd, now)
  local lefts, refused = {}, 0
  for i = first, last do
    local left = budget_left(KEYS[i], tonumber(ARGV[base + 2 * i]), now)
    lefts[i] = tostring(left)
    if refused == 0 and (left <= 0 or usd > left) then refused = i end
  end
  return lefts, refused
end

-- Replaces the request's reservation by its actual cost ``usd`` (text).
local function budget_settle(key, rid, usd)
  redis.call('HDEL', key, 'r:' .. rid)
  if tonumber(usd) > 0 then redis.call('HINCRBYFLOAT', key, 'spent', usd) end
  if redis.call('TTL', key) < 0 then redis.call('EXPIRE', key, 3024000) end
end
"""

# KEYS: one hash per limit. ARGV[1]: the request's tokens; then per key: its request limit,
# its token limit (-1: none).
_RATE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local sec = tonumber(t[1])
local tokens = tonumber(ARGV[1])
for i, key in ipairs(KEYS) do
  local rlim, tlim = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local retry = rate_refusal(key, sec, now, rlim, tlim, tokens)
  if retry then return {0, i, retry} end
end
for _, key in ipairs(KEYS) do rate_take(key, sec, tokens) end
return {1, 0, '0'}
"""

_ADD_TOKENS = """
local sec = redis.call('TIME')[1]
for _, key in ipairs(KEYS) do rate_add(key, sec, ARGV[1]) end
return 0
"""

# KEYS: one hash per budget. ARGV: request id, usd, hold seconds, then per key: its budget,
# its expiry.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local usd, hold = tonumber(ARGV[2]), tonumber(ARGV[3])
local lefts, refused = budgets_check(1, #KEYS, 2, usd, now)
if refused > 0 then return {0, refused, lefts} end
for i, key in ipairs(KEYS) do
  redis.call('HSET', key, 'r:' .. ARGV[1], ARGV[2] .. ' ' .. tostring(now + hold))
  redis.call('EXPIREAT', key, ARGV[3 + 2 * i])
end
return {1, 0, lefts}
"""

# The budgets' reservation and the rate check in one script (one round trip): KEYS, the
# budgets' then the rate limits'; ARGV: the number of budget keys, request id, usd, hold
# seconds, per budget its limit and expiry, then the tokens and per rate limit its request
# and token limits. Nothing is written unless every check passes. Returns
# {1, 0, '0', lefts} admitted, {0, i, '0', lefts} budget i short, {2, i, retry, lefts} rate
# limit i full.
_ADMIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local sec = tonumber(t[1])
local nb = tonumber(ARGV[1])
local rid, usd, hold = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
local lefts, refused = budgets_check(1, nb, 3, usd, now)
if refused > 0 then return {0, refused, '0', lefts} end
local base = 5 + 2 * nb
local tokens = tonumber(ARGV[base])
for i = nb + 1, #KEYS do
  local r = i - nb
  local rlim, tlim = tonumber(ARGV[base + 2 * r - 1]), tonumber(ARGV[base + 2 * r])
  local retry = rate_refusal(KEYS[i], sec, now, rlim, tlim, tokens)
  if retry then return {2, r, retry, lefts} end
end
for i = 1, nb do
  redis.call('HSET', KEYS[i], 'r:' .. rid, ARGV[3] .. ' ' .. tostring(now + hold))
  redis.call('EXPIREAT', KEYS[i], ARGV[4 + 2 * i])
end
for i = nb + 1, #KEYS do rate_take(KEYS[i], sec, tokens) end
return {1, 0, '0', lefts}
"""

_SETTLE = """
for _, key in ipairs(KEYS) do budget_settle(key, ARGV[1], ARGV[2]) end
return 0
"""


# A request's end: KEYS, its budgets' then its rate limits'; ARGV: the number of budget keys,
# request id, actual usd, the tokens to add to the current second (its usage minus the
# estimate charged).
_FINISH = """
local nb = tonumber(ARGV[1])
for i = 1, nb do budget_settle(KEYS[i], ARGV[2], ARGV[3]) end
if tonumber(ARGV[4]) ~= 0 then
  local sec = redis.call('TIME')[1]
  for i = nb + 1, #KEYS do rate_add(KEYS[i], sec, ARGV[4]) end
end
return 0
"""


def connect(url: str, timeout_s: float = 0.5) -> Redis:
    """A client that gives up quickly: a Redis that does not answer must not hold requests
    (each limit then fails open or closed, as its policy says)."""
    client: Redis = Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        retry_on_timeout=False,
        health_check_interval=0,
    )
    return client


class RedisCounters:
    """``Counters`` in Redis (``redis://host:port/db``), every key under ``prefix``."""

    def __init__(self, client: Redis, prefix: str = "modelroute:") -> None:
        self.client = client
        self.prefix = prefix
        self._rate = client.register_script(_FUNCTIONS + _RATE)
        self._add = client.register_script(_FUNCTIONS + _ADD_TOKENS)
        self._reserve = client.register_script(_FUNCTIONS + _RESERVE)
        self._settle = client.register_script(_FUNCTIONS + _SETTLE)
        self._admit = client.register_script(_FUNCTIONS + _ADMIT)
        self._finish = client.register_script(_FUNCTIONS + _FINISH)

    def _keys(self, keys: Sequence[str]) -> list[str]:
        return [self.prefix + k for k in keys]

    async def rate(self, checks: Sequence[RateCheck], tokens: int) -> RateVerdict:
        args: list[Any] = [tokens]
        for c in checks:
            args += [-1 if c.requests is None else c.requests, -1 if c.tokens is None else c.tokens]
        ok, index, retry = await self._rate(keys=self._keys([c.key for c in checks]), args=args)
        if ok:
            return RateVerdict(True)
        return RateVerdict(False, int(index) - 1, max(0.0, float(retry)))

    async def add_tokens(self, keys: Sequence[str], tokens: int) -> None:
        if keys and tokens:
            await self._add(keys=self._keys(keys), args=[tokens])

    async def reserve(
        self, checks: Sequence[BudgetCheck], request_id: str, usd: float, hold_s: float
    ) -> BudgetVerdict:
        args: list[Any] = [request_id, repr(usd), repr(hold_s)]
        for c in checks:
            args += [repr(c.usd), int(c.expires_at)]
        keys = self._keys([c.key for c in checks])
        ok, index, lefts = await self._reserve(keys=keys, args=args)
        return BudgetVerdict(bool(ok), int(index) - 1, tuple(float(x) for x in lefts))

    async def admit(
        self,
        budgets: Sequence[BudgetCheck],
        request_id: str,
        usd: float,
        hold_s: float,
        rates: Sequence[RateCheck],
        tokens: int,
    ) -> AdmitVerdict:
        args: list[Any] = [len(budgets), request_id, repr(usd), repr(hold_s)]
        for b in budgets:
            args += [repr(b.usd), int(b.expires_at)]
        args.append(tokens)
        for c in rates:
            args += [-1 if c.requests is None else c.requests, -1 if c.tokens is None else c.tokens]
        keys = self._keys([b.key for b in budgets] + [c.key for c in rates])
        code, index, retry, raw = await self._admit(keys=keys, args=args)
        lefts = tuple(float(x) for x in raw)
        code, index = int(code), int(index)
        if code == 0:
            return AdmitVerdict(BudgetVerdict(False, index - 1, lefts), RateVerdict(True))
        budget = BudgetVerdict(True, -1, lefts)
        if code == 2:
            return AdmitVerdict(budget, RateVerdict(False, index - 1, max(0.0, float(retry))))
        return AdmitVerdict(budget, RateVerdict(True))

    async def finish(
        self, budget_keys: Sequence[str], request_id: str, usd: float,
        rate_keys: Sequence[str], tokens: int,
    ) -> None:  # fmt: skip
        if not budget_keys and not (rate_keys and tokens):
            return
        keys = self._keys([*budget_keys, *rate_keys])
        await self._finish(keys=keys, args=[len(budget_keys), request_id, repr(usd), tokens])

    async def settle(self, keys: Sequence[str], request_id: str, usd: float) -> None:
        if keys:
            await self._settle(keys=self._keys(keys), args=[request_id, repr(usd)])

    async def spent(self, key: str) -> float:
        value = await self.client.hget(self.prefix + key, "spent")
        return 0.0 if value is None else float(value)

    async def aclose(self) -> None:
        await self.client.aclose()
