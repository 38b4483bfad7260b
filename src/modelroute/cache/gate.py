"""The router's side of the response cache: look a planned request up, keep an answer.

A request is looked up once it is planned (the key names the resolved model) and before the
route's limits are counted: a hit answers at no cost, spends no budget and takes no rate-limit
allowance. A miss's answer is kept when the request ends well; a stream's once it has been
relayed whole (``StreamCollector``).

Per request, ``x-modelroute-cache: off`` neither looks up nor keeps, ``refresh`` does not look
up but keeps the new answer. The response says ``x-modelroute-cache: hit`` or ``miss`` when
the cache was consulted.

A route with ``mode: semantic`` is then looked up in the ``SemanticIndex`` on an exact miss
(``semantic.py``): a hit there is the cached answer to a paraphrase, with its similarity.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from modelroute.cache.collect import StreamCollector
from modelroute.cache.entry import CachedAnswer
from modelroute.cache.key import cache_key, uncacheable
from modelroute.policy.compiled import Model, Route
from modelroute.types import StreamChunk

if TYPE_CHECKING:  # numpy loads with a semantic route, not with every cache
    from modelroute.cache.semantic import Probe, SemanticIndex

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


# Semantic candidates above the threshold tried in turn when the best one's answer is gone.
SEMANTIC_TRIES = 3


@dataclass(slots=True)
class Lookup:
    key: str
    ttl_s: float
    hit: CachedAnswer | None
    probe: Probe | None = None  # the semantic lookup's, kept with the answer on a miss
    similarity: float | None = None  # a semantic hit's (None: an exact hit, or a miss)


class CacheGate:
    """``semantic``: the index of routes with ``mode: semantic`` (``cache/semantic.py``);
    without it, such routes match exactly only. ``semantic_max_entries``: the bound of an
    index made for a policy that brings the first such route (None: the default)."""

    def __init__(
        self,
        backend: ResponseCache,
        wall: Callable[[], float] = time.time,
        semantic: SemanticIndex | None = None,
        semantic_max_entries: int | None = None,
    ) -> None:
        self.backend = backend
        self.wall = wall
        self.semantic = semantic
        self.semantic_max_entries = semantic_max_entries

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
        semantic = self.semantic if rule.similarity is not None else None
        if mode == REFRESH:
            probe = None
            if semantic is not None:  # not looked up, but kept for later paraphrases
                probe = await semantic.probe(route.name, model.name, model.model_id, body)
            return Lookup(key, rule.ttl_s, None, probe)
        raw = await self.backend.get(key)
        found = Lookup(key, rule.ttl_s, None if raw is None else CachedAnswer.decode(raw))
        if found.hit is not None or semantic is None or rule.similarity is None:
            return found
        found.probe = await semantic.probe(route.name, model.name, model.model_id, body)
        if found.probe is not None:
            await self._nearest(semantic, found, rule.similarity)
        return found

    async def _nearest(self, semantic: SemanticIndex, lookup: Lookup, threshold: float) -> None:
        """The cached answer to the closest paraphrase at ``threshold`` or above, if any; an
        entry whose answer has left the cache (pushed out, expired) is forgotten."""
        probe = lookup.probe
        assert probe is not None
        for other, similarity in semantic.nearest(probe, threshold)[:SEMANTIC_TRIES]:
            raw = await self.backend.get(other)
            answer = None if raw is None else CachedAnswer.decode(raw)
            if answer is None:
                semantic.discard(probe.partition, other)
                continue
            semantic.used(probe, other)
            lookup.hit, lookup.similarity = answer, similarity
            return

    async def keep(self, lookup: Lookup, body: dict[str, Any], model: str, cost: float) -> None:
        answer = CachedAnswer(body, model, cost, self.wall())
        await self.backend.put(lookup.key, answer.encode(), lookup.ttl_s)
        if lookup.probe is not None and self.semantic is not None:
            self.semantic.add(lookup.probe, lookup.key, lookup.ttl_s)

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
        if self.semantic is not None:
            self.semantic.close()
        await self.backend.aclose()
