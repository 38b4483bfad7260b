"""The response cache's part in a request, for routes that declare ``cache:``
(``modelroute.cache``): the lookup before running, a hit's answer, keeping a miss's answer."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelroute.cache import HEADER as CACHE_HEADER
from modelroute.cache import CacheGate, Lookup
from modelroute.planner import Decision
from modelroute.recording import RecordBuilder
from modelroute.records.record import RecordSink, RequestRecord, RequestStatus
from modelroute.types import Completion


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
        builder.record.cache_hit = lookup.hit is not None
    return lookup


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
    return headers


def kept_as(record: RequestRecord) -> tuple[str, float] | None:
    """A relayed stream's answering model and cost, if it ended well (else nothing is kept)."""
    if record.status != RequestStatus.OK or record.final_model is None:
        return None
    return record.final_model, record.cost_usd
