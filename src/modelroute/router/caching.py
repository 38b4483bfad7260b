"""The response cache's part in a request, for routes that declare ``cache:``
(``modelroute.cache``): the lookup before running, a hit's answer, keeping a miss's answer;
and the semantic index, for policies with a route that asks for it."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from modelroute.cache import HEADER as CACHE_HEADER
from modelroute.cache import CacheGate, Lookup, ResponseCache
from modelroute.planner import Decision
from modelroute.policy import Policy
from modelroute.recording import RecordBuilder
from modelroute.records.record import RecordSink, RequestRecord, RequestStatus
from modelroute.types import Completion

if TYPE_CHECKING:  # numpy and torch load with a semantic route only
    from modelroute.cache.semantic import SemanticIndex

# A semantic hit's similarity to the request it answered (``x-modelroute-cache: hit`` too).
SIMILARITY_HEADER = "x-modelroute-cache-similarity"


async def look_up(
    cache: CacheGate,
    builder: RecordBuilder,
    decision: Decision,
    body: dict[str, Any],
    headers: Mapping[str, str] | None,
) -> Lookup | None:
    """The response cache, for a route that has one (``modelroute.cache``)."""
    route = builder.policy.routes.get(decision.route)
    if route is None or route.cache is None:
        return None
    chosen = decision.chosen
    model = None if chosen is None else builder.policy.models.get(chosen)
    lookup = await cache.lookup(route, model, body, headers)
    if lookup is not None:
        record = builder.record
        record.cache_hit = lookup.hit is not None
        record.cache_similarity = lookup.similarity
        record.cache_embed_ms = None if lookup.probe is None else lookup.probe.embed_ms
    return lookup


def cache_gate(
    backend: ResponseCache,
    semantic: SemanticIndex | None,
    max_entries: int | None,
    policy: Policy,
    clock: Callable[[], float],
) -> CacheGate:
    """The router's cache: ``backend``, and the semantic index given or, when ``policy`` has
    a semantic route, made now. ``max_entries`` (``Router(semantic_max_entries=)``) is
    checked here rather than when a policy with a semantic route first comes (maybe much
    later, through ``use_policy``)."""
    if max_entries is not None:
        if max_entries < 1:
            raise ValueError("semantic_max_entries: the index needs room for at least one entry")
        if semantic is not None:
            raise ValueError(
                "semantic_max_entries bounds the index the router makes; a given semantic "
                "index has its own bound (SemanticIndex(max_entries=))"
            )
    index = semantic_index([policy], semantic, clock, max_entries)
    return CacheGate(backend, semantic=index, semantic_max_entries=max_entries)


def semantic_index(
    policies: Iterable[Policy],
    current: SemanticIndex | None,
    clock: Callable[[], float],
    max_entries: int | None = None,
) -> SemanticIndex | None:
    """The semantic cache's index, made (and its embedding model loaded, with torch) the
    first time a policy has a route with ``mode: semantic``, bounded by ``max_entries``
    (``DEFAULT_MAX_ENTRIES`` when None); ``current`` once there is one."""
    if current is not None:
        return current
    wanted = any(
        r.cache is not None and r.cache.similarity is not None
        for p in policies
        for r in p.routes.values()
    )
    if not wanted:
        return None
    from modelroute.cache.semantic import DEFAULT_MAX_ENTRIES, SemanticIndex
    from modelroute.learned.embed import Embedder, one_thread

    embedder = Embedder()
    one_thread()
    embedder.encode_whole("warm-up")  # the first encoding pays one-off set-up: not a request
    bound = DEFAULT_MAX_ENTRIES if max_entries is None else max_entries
    return SemanticIndex(embedder.encode_whole, embedder.dim, max_entries=bound, clock=clock)


def answer_cached(
    builder: RecordBuilder, lookup: Lookup, sink: RecordSink
) -> tuple[Completion, dict[str, str]]:
    """A hit: its record (no attempt, cost 0, the cost saved) and its headers."""
    hit = lookup.hit
    assert hit is not None
    completion = hit.completion()
    builder.finish_cached(hit.model, hit.cost_usd, completion)
    sink.submit(builder.record)
    headers = marked(builder, lookup)
    headers["x-modelroute-attempts"] = "0"
    return completion, headers


def marked(builder: RecordBuilder, lookup: Lookup | None) -> dict[str, str]:
    """The response headers, with ``x-modelroute-cache`` when the cache was consulted."""
    headers = builder.headers()
    if lookup is not None:
        headers[CACHE_HEADER] = "miss" if lookup.hit is None else "hit"
        if lookup.similarity is not None:
            headers[SIMILARITY_HEADER] = f"{lookup.similarity:.4f}"
    return headers


def kept_as(record: RequestRecord) -> tuple[str, float] | None:
    """A relayed stream's answering model and cost, if it ended well (else nothing is kept)."""
    if record.status != RequestStatus.OK or record.final_model is None:
        return None
    return record.final_model, record.cost_usd
