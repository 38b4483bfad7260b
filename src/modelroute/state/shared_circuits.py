"""Circuit breakers shared by every replica through Redis (``--state redis://...``).

The request path never waits for Redis. Each replica keeps its in-process ``Breakers`` as the
view the engine and the planner read (``allow`` and ``open_models`` stay dictionary look-ups,
called several times per request), and:

- every outcome is also queued and written to Redis in one batch every ``interval_s`` (one
  Lua script per batch, not a round trip per call): Redis keeps each model's window, counted
  from every replica's outcomes, and trips the breaker on the same rules as ``Breakers``
  (error rate over ``min_calls``, ``consecutive_failures``, the probe after the cool-down);
  a trip this replica's own breaker decided is written there too;
- the same script answers with each model's shared state, and a replica with nothing to
  write asks for it every ``poll_s``: a breaker opened anywhere is open here within about
  ``interval_s + poll_s``, for the time it has left there, and a successful probe anywhere
  closes it here.

Polling rather than pub/sub: the states are a few short fields per model, read a few times a
second per replica, and a poll cannot miss a message while a connection is being re-made.
While Redis cannot be reached the replica keeps judging by its own outcomes alone (each
error logged at most once per ``quiet_s`` and counted through ``on_error``); queued outcomes
are dropped rather than kept without bound.

After the cool-down each replica lets one probe through on its own: with N replicas up to N
probes reach a recovering model at once, instead of the one a single process sends.
"""

from __future__ import annotations

from collections.abc import Mapping

from redis.asyncio import Redis

from modelroute.failures import UNHEALTHY, FailureClass
from modelroute.policy.compiled import BreakerPolicy
from modelroute.state.breakers import RATE_LIMITS, Breakers
from modelroute.state.shared_sync import ErrorHook, SyncLoop, as_str

# KEYS: one hash per model. ARGV, six per key: its queued events ("s" success, "u" unhealthy,
# "l<retry-after s>" rate limited, "T<h|r><seconds>" a trip a replica decided), error_rate,
# min_calls, window_s, consecutive_failures, cooldown_s. Fields: until (epoch s; 0 closed;
# past: half-open), cause, gen (counts trips and closings), ru/rl (runs), and the window's ten
# slices as c:<n>, u:<n>, l:<n>. Returns per key: {seconds left open, cause, gen, closed}.
_SYNC = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local out = {}
for i, key in ipairs(KEYS) do
  local b = (i - 1) * 6
  local rate, minc = tonumber(ARGV[b + 2]), tonumber(ARGV[b + 3])
  local win, consec, cool = tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5]), tonumber(ARGV[b + 6])
  local cur = math.floor(now / (win / 10))
  local h = redis.call('HGETALL', key)
  local untl, cause, gen, ru, rl = 0, 'ill health', 0, 0, 0
  local calls, unh, lim, slices, stale = 0, 0, 0, {}, {}
  for j = 1, #h, 2 do
    local f, v = h[j], h[j + 1]
    if f == 'until' then untl = tonumber(v)
    elseif f == 'cause' then cause = v
    elseif f == 'gen' then gen = tonumber(v)
    elseif f == 'ru' then ru = tonumber(v)
    elseif f == 'rl' then rl = tonumber(v)
    else
      slices[#slices + 1] = f
      if tonumber(string.sub(f, 3)) <= cur - 10 then stale[#stale + 1] = f
      else
        local k = string.sub(f, 1, 1)
        if k == 'c' then calls = calls + tonumber(v)
        elseif k == 'u' then unh = unh + tonumber(v)
        else lim = lim + tonumber(v) end
      end
    end
  end
  local add_c, add_u, add_l, cleared = 0, 0, 0, false
  local function reset()
    ru, rl, calls, unh, lim, add_c, add_u, add_l, cleared = 0, 0, 0, 0, 0, 0, 0, 0, true
  end
  local function trip(why, secs)
    untl = math.max(untl, now + secs)
    cause, gen = why, gen + 1
    reset()
  end
  for ev in string.gmatch(ARGV[b + 1], '%S+') do
    local code = string.sub(ev, 1, 1)
    local open = untl > now
    local half = untl > 0 and not open
    if code == 'T' then
      local secs = tonumber(string.sub(ev, 3))
      if untl < now + secs - 0.001 then
        trip(string.sub(ev, 2, 2) == 'r' and 'rate limits' or 'ill health', secs)
      end
    elseif open then
      -- an outcome of a call sent before the breaker opened: already judged
    elseif code == 's' then
      if half then untl, gen = 0, gen + 1; reset() end
      ru, rl, calls, add_c = 0, 0, calls + 1, add_c + 1
    elseif code == 'u' then
      ru, calls, unh, add_c, add_u = ru + 1, calls + 1, unh + 1, add_c + 1, add_u + 1
      if half or ru >= consec or (calls >= minc and unh >= rate * calls) then
        trip('ill health', cool)
      end
    elseif code == 'l' then
      rl, calls, lim, add_c, add_l = rl + 1, calls + 1, lim + 1, add_c + 1, add_l + 1
      if half or rl >= consec or (calls >= minc and lim >= rate * calls) then
        local wait = tonumber(string.sub(ev, 2))
        if wait == nil or wait < 0 then wait = cool end
        trip('rate limits', wait)
      end
    end
  end
  if cleared and #slices > 0 then redis.call('HDEL', key, unpack(slices))
  elseif #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
  redis.call('HSET', key, 'until', tostring(untl), 'cause', cause, 'gen', gen, 'ru', ru, 'rl', rl)
  if add_c > 0 then redis.call('HINCRBY', key, 'c:' .. cur, add_c) end
  if add_u > 0 then redis.call('HINCRBY', key, 'u:' .. cur, add_u) end
  if add_l > 0 then redis.call('HINCRBY', key, 'l:' .. cur, add_l) end
  redis.call('EXPIRE', key, math.max(3600, math.ceil(untl - now) + 60))
  out[i] = {tostring(math.max(0, untl - now)), cause, gen, untl == 0 and 1 or 0}
end
return out
"""


class SharedBreakers(SyncLoop):
    """``CircuitState`` over a local ``Breakers`` kept in step with Redis (see above)."""

    _component = "circuits"
    _fallback = "circuit breakers judge by this replica's outcomes"

    def __init__(
        self,
        local: Breakers,
        client: Redis,
        settings: Mapping[str, BreakerPolicy],
        *,
        prefix: str = "modelroute:",
        interval_s: float = 0.05,
        poll_s: float = 0.25,
        on_error: ErrorHook | None = None,
        quiet_s: float = 10.0,
    ) -> None:
        super().__init__(client, interval_s, poll_s, on_error, quiet_s)
        self.local = local
        self._settings = dict(settings)
        self._prefix = prefix
        self._sync = client.register_script(_SYNC)
        self._events: dict[str, list[str]] = {}
        self._gens: dict[str, int] = {}
        # the CircuitState reads go straight to the local view
        self.allow = local.allow
        self.why_not = local.why_not
        self.release = local.release
        self.open_models = local.open_models
        self.state = local.state
        self.snapshot = local.snapshot

    def configure(self, settings: Mapping[str, BreakerPolicy]) -> None:
        """A reloaded policy's breaker settings, here and in what is written to Redis."""
        self.local.configure(settings)
        self._settings.update(settings)

    def _queue(self, model: str, event: str) -> None:
        queued = self._events.get(model)
        if queued is None:
            queued = self._events[model] = []
        if len(queued) < 10_000:  # while Redis is away: bounded
            queued.append(event)

    def success(self, model: str) -> None:
        self.local.success(model)
        self._queue(model, "s")

    def failure(
        self, model: str, cls: FailureClass | None = None, retry_after_s: float | None = None
    ) -> None:
        before = self.local.trips(model)
        self.local.failure(model, cls, retry_after_s)
        if cls in UNHEALTHY:
            self._queue(model, "u")
        elif cls is FailureClass.RATE_LIMITED:
            self._queue(model, f"l{-1 if retry_after_s is None else retry_after_s:.3f}")
        if self.local.trips(model) > before:
            opened = self.local.open_for(model)
            if opened is not None:
                cause, seconds = opened
                self._queue(model, f"T{'r' if cause == RATE_LIMITS else 'h'}{seconds:.3f}")

    # -- the background sync ------------------------------------------------------------

    def _pending(self) -> bool:
        return bool(self._events)

    async def aclose(self) -> None:
        """Stop syncing, after one last write of what is queued."""
        await self._stop()

    async def close(self) -> None:
        await self._stop()

    async def sync(self, poll: bool = True) -> None:
        """Write the queued outcomes; read the state of those models (of all, with
        ``poll``) and impose it here."""
        events, self._events = self._events, {}
        models = list(self._settings) if poll else list(events)
        models += [m for m in events if m not in self._settings]
        if not models:
            return
        args: list[str | float | int] = []
        for model in models:
            s = self._settings.get(model) or BreakerPolicy()
            args += [" ".join(events.get(model, ())), s.error_rate, s.min_calls, s.window_s]
            args += [s.consecutive_failures, s.cooldown_s]
        keys = [f"{self._prefix}circuit:{m}" for m in models]
        results = await self._sync(keys=keys, args=args)
        for model, (left, cause, gen, closed) in zip(models, results, strict=True):
            self._apply(model, float(left), as_str(cause), int(gen), bool(int(closed)))

    def _apply(self, model: str, left: float, cause: str, gen: int, closed: bool) -> None:
        if self._gens.get(model) == gen:
            return
        self._gens[model] = gen
        if left > 0:
            self.local.impose_open(model, cause, left)
        elif closed:
            self.local.impose_closed(model)
