"""The router's side of the response cache: look a planned request up, keep an answer.

A request is looked up once it is planned (the key names the resolved model) and before the
route's limits are counted: a hit answers at no cost, spends no budget and takes no rate-limit
allowance. A miss's answer is kept when the request ends well; a stream's once it has been
relayed whole (``StreamCollector``).

Per request, ``x-modelroute-cache: off`` neither looks up nor keeps, ``refresh`` does not look
up but keeps the new answer. The response says ``x-modelroute-cache: hit`` or ``miss`` when
the cache was consulted.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from modelroute.cache.collect import StreamCollector
from modelroute.cache.entry import CachedAnswer
from modelroute.cache.key import cache_key, uncacheable
from modelroute.policy.compiled import Model, Route
from modelroute.types import StreamChunk

HEADER = "x-modelroute-cache"
OFF, REFRESH = "off", "refresh"


class ResponseCache(Protocol):
    """Where entries live: ``MemoryCache`` (this process) or ``RedisCache`` (shared)."""

    async def get(self, key: str) -> bytes | None: ...

    async def put(self, key: str, value: bytes, ttl_s: float) -> None: ...

    async def aclose(self) -> None: ...


class Entries(ResponseCache, Protocol):
    """The same stores, for entries a client may also delete (the Responses API's stored
    responses)."""

    async def delete(self, key: str) -> bool: ...


class StoreUnreachable(RuntimeError):
    """A shared store that cannot be reached, from one that says so rather than answering as
    if the entry were not there (``RedisCache(fail_open=False)``)."""


@dataclass(slots=True)
class Lookup:
    key: str
    ttl_s: float
    hit: CachedAnswer | None


class CacheGate:
    def __init__(self, backend: ResponseCache, wall: Callable[[], float] = time.time) -> None:
        self.backend = backend
        self.wall = wall

    async def lookup(
        self,
        route: Route | None,
        model: Model | None,
        body: Mapping[str, Any],
        headers: Mapping[str, str] | None,
    ) -> Lookup | None:
        """None when the cache is not to be consulted for this request."""
        rule = None if route is None else route.cache
        if rule is None or route is None or model is None:
            return None
        mode = headers.get(HEADER) if headers else None
        if mode == OFF or uncacheable(body, rule.allow_sampling) is not None:
            return None
        key = cache_key(route.name, model.name, model.model_id, body)
        if mode == REFRESH:
            return Lookup(key, rule.ttl_s, None)
        raw = await self.backend.get(key)
        return Lookup(key, rule.ttl_s, None if raw is None else CachedAnswer.decode(raw))

    async def keep(self, lookup: Lookup, body: dict[str, Any], model: str, cost: float) -> None:
        answer = CachedAnswer(body, model, cost, self.wall())
        await self.backend.put(lookup.key, answer.encode(), lookup.ttl_s)

    async def keeping(
        self,
        lookup: Lookup,
        chunks: AsyncIterator[StreamChunk],
        ended_well: Callable[[], tuple[str, float] | None],
    ) -> AsyncIterator[StreamChunk]:
        """``chunks``, relayed; once the last one is read, the answer they carried is kept
        if ``ended_well()`` gives the answering model and the cost (the record says so)."""
        collector = StreamCollector()
        async for chunk in chunks:
            collector.add(chunk)
            yield chunk
        served = ended_well()
        body = collector.completion_body()
        if served is not None and body is not None:
            await self.keep(lookup, body, *served)

    async def aclose(self) -> None:
        await self.backend.aclose()
