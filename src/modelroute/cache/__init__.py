"""The response cache: an exact repeat of a request answered at no cost.

Opt-in per route in the policy (``cache: {ttl: 10m, allow_sampling: false}``). The key
(``key.py``) is a hash of the route, the model the planner resolved and the request's
generation fields; entries live in process memory (``MemoryCache``, bounded by entries and
bytes) or in Redis (``RedisCache``, shared by every replica), as ``serve --state`` chooses.
A hit is answered plain or replayed as a stream, whichever the request asks for, and its
record says ``cache_hit`` with the cost it saved (``gate.py``).
"""

from modelroute.cache.entry import CachedAnswer
from modelroute.cache.gate import (
    HEADER,
    CacheGate,
    Entries,
    Lookup,
    ResponseCache,
    StoreUnreachable,
)
from modelroute.cache.key import cache_key, samples, uncacheable
from modelroute.cache.memory import MemoryCache

__all__ = [
    "HEADER",
    "CacheGate",
    "CachedAnswer",
    "Entries",
    "Lookup",
    "MemoryCache",
    "ResponseCache",
    "StoreUnreachable",
    "cache_key",
    "samples",
    "uncacheable",
]
