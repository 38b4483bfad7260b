"""Rolling statistics shared by every replica through Redis (``--state redis://...``).

The planner reads each replica's ``RollingStats`` snapshot, as with one process; what changes
is what fills its latency and error windows. ``SharedStats`` is a record sink beside it:

- each finished request's attempts (a latency for a success, a failure mark otherwise) are
  queued, and every ``interval_s`` the queue is written to Redis in one Lua script: one list
  per (route, model) and one per model, each trimmed to the window's size (the same window
  as in process: the latest ``window`` attempts, from whichever replica made them);
- every ``poll_s`` the same script also reads the lists back (only when some replica wrote
  since this one last read: a version counter says so) and imposes them on the local
  ``RollingStats``: a latency measured on one replica is in every replica's next snapshot
  within about ``interval_s + poll_s + refresh_s``.

The request path never waits for Redis: ``submit`` appends to a list. While Redis cannot be
reached, each replica's windows hold its own attempts (as without shared state); the error is
logged at most once per ``quiet_s`` and counted through ``on_error``, and what was queued
meanwhile is kept up to a bound, then dropped. Quality scores from feedback stay per process
(measured quality from the store's outcomes is shared through the store).

The lists' names are read from an index set inside the script: this is written for a single
Redis (or a primary with replicas), not Redis Cluster.
"""

from __future__ import annotations

from redis.asyncio import Redis

from modelroute.policy.schema import QUALITY_WINDOW
from modelroute.records.record import ANSWERED, AttemptResult, RequestRecord
from modelroute.state.rolling import RollingStats
from modelroute.state.shared_sync import ErrorHook, SyncLoop, as_str

# KEYS[1]: the version counter, KEYS[2]: the index of list names, KEYS[3..]: lists written.
# ARGV[1]: the version the caller holds ('' : write only, read nothing); ARGV[2]: the window
# size; ARGV[3]: the lists' key prefix; ARGV[3 + i]: space-separated samples for KEYS[2 + i]
# ('f' a failure, else a latency in ms). Returns {version, name, samples, name, samples, ...}
# or {version} when the caller holds the current version (or asked for no read).
_SYNC = """
local size = tonumber(ARGV[2])
local wrote = false
for i = 3, #KEYS do
  local items = {}
  for s in string.gmatch(ARGV[i + 1], '%S+') do items[#items + 1] = s end
  for j = 1, #items, 1000 do
    redis.call('RPUSH', KEYS[i], unpack(items, j, math.min(j + 999, #items)))
  end
  if #items > 0 then
    redis.call('LTRIM', KEYS[i], -size, -1)
    redis.call('EXPIRE', KEYS[i], 86400)
    redis.call('SADD', KEYS[2], string.sub(KEYS[i], #ARGV[3] + 1))
    wrote = true
  end
end
if wrote then
  redis.call('INCR', KEYS[1])
  redis.call('EXPIRE', KEYS[1], 86400)
  redis.call('EXPIRE', KEYS[2], 86400)
end
local ver = redis.call('GET', KEYS[1]) or '0'
if ARGV[1] == '' or ver == ARGV[1] then return {ver} end
local out = {ver}
for _, name in ipairs(redis.call('SMEMBERS', KEYS[2])) do
  out[#out + 1] = name
  out[#out + 1] = table.concat(redis.call('LRANGE', ARGV[3] .. name, 0, -1), ' ')
end
return out
"""

SEP = "\x1f"  # between a route's and a model's name in a list's name (neither holds it)
MAX_QUEUED = 50_000  # samples kept while Redis is away


class SharedStats(SyncLoop):
    """A record sink feeding every replica's ``RollingStats`` from the same windows."""

    _component = "stats"
    _fallback = "rolling statistics count this replica's attempts"

    def __init__(
        self,
        client: Redis,
        *,
        prefix: str = "modelroute:",
        window: int = QUALITY_WINDOW,
        interval_s: float = 0.25,
        poll_s: float = 1.0,
        on_error: ErrorHook | None = None,
        quiet_s: float = 10.0,
    ) -> None:
        super().__init__(client, interval_s, poll_s, on_error, quiet_s)
        self.rolling: RollingStats | None = None
        self._lists = f"{prefix}stats:w:"
        self._version_key = f"{prefix}stats:version"
        self._index_key = f"{prefix}stats:index"
        self._window = window
        self._sync = client.register_script(_SYNC)
        self._queued: dict[str, list[str]] = {}
        self._count = 0
        self._version = "-"  # none read yet

    def attach(self, rolling: RollingStats) -> None:
        """The windows the shared ones are imposed on (the router's own)."""
        self.rolling = rolling

    # -- the record sink (the request path: appends only) ---------------------------------

    def submit(self, record: RequestRecord) -> None:
        route = record.route
        if route is None:
            return
        for attempt in record.attempts:
            if attempt.outcome in (AttemptResult.SKIPPED, AttemptResult.CANCELLED):
                continue
            sample = f"{attempt.latency_ms:.1f}" if attempt.outcome in ANSWERED else "f"
            self._add(f"r{route}{SEP}{attempt.model}", sample)
            self._add(f"m{attempt.model}", sample)

    def _add(self, name: str, sample: str) -> None:
        if self._count >= MAX_QUEUED:
            return
        queued = self._queued.get(name)
        if queued is None:
            queued = self._queued[name] = []
        queued.append(sample)
        self._count += 1

    # -- the background sync ------------------------------------------------------------

    def _pending(self) -> bool:
        return bool(self._queued)

    async def close(self) -> None:
        """Stop syncing, after one last write of what is queued."""
        await self._stop()

    async def sync(self, read: bool = True) -> None:
        """Write what is queued; with ``read``, impose the shared windows if they changed."""
        queued, self._queued, self._count = self._queued, {}, 0
        names = list(queued)
        keys = [self._version_key, self._index_key, *(self._lists + n for n in names)]
        args: list[str | int] = [self._version if read else "", self._window, self._lists]
        args += [" ".join(queued[n]) for n in names]
        try:
            result = await self._sync(keys=keys, args=args)
        except Exception:
            self._requeue(queued)
            raise
        version = as_str(result[0])
        if len(result) > 1:
            self._impose(result[1:])
        if read:
            self._version = version

    def _requeue(self, queued: dict[str, list[str]]) -> None:
        for name, samples in queued.items():
            for sample in samples:
                self._add(name, sample)

    def _impose(self, flat: list[bytes | str]) -> None:
        if self.rolling is None:
            return
        by_route: dict[tuple[str, str], list[float | None]] = {}
        by_model: dict[str, list[float | None]] = {}
        for name, raw in zip(flat[::2], flat[1::2], strict=True):
            key, text = as_str(name), as_str(raw)
            samples = [None if s == "f" else float(s) for s in text.split()]
            if not samples:
                continue  # expired since it was indexed
            if key.startswith("r") and SEP in key:
                route, model = key[1:].split(SEP, 1)
                by_route[(route, model)] = samples
            elif key.startswith("m"):
                by_model[key[1:]] = samples
        self.rolling.impose(by_route, by_model)
