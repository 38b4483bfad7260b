"""Feedback on a served request: joined to its record, counted once in measured quality."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from modelroute.feedback import Caller, FeedbackResult, feedback_outcome
from modelroute.records.record import MemorySink, RecordSink
from modelroute.state.rolling import RollingStats, Served, label_score, served

if TYPE_CHECKING:
    from modelroute.records.stores.base import Store


async def join_feedback(
    rolling: RollingStats,
    store: Store | None,
    records: RecordSink,
    request_id: str,
    score: float | None,
    label: str | None,
    source: str | None,
    comment: str | None,
    caller: Caller,
) -> FeedbackResult:
    """``Router.feedback``: the rating kept in the store (when there is one) and the rolling
    window; ``records`` is where the router keeps records (for a request served earlier)."""
    if score is not None and not 0.0 <= score <= 1.0:
        raise ValueError(f"a feedback score must be in [0, 1], got {score}")
    found = rolling.served(request_id)
    local = found is not None
    if found is None:
        found = await _served_earlier(store, records, request_id)
    if found is None:
        return FeedbackResult.UNKNOWN_REQUEST
    refused = caller.refusal(found.client_key_id)
    if refused is not None:
        return refused
    value = score if score is not None else label_score(label)
    if store is not None:
        # A request served here may still be on its way to the store: wait up to 2 s.
        fields = (request_id, score, label, source, comment)
        stored = await _retry(lambda: store.add_feedback(*fields), 20 if local else 1)
        if not stored and not local:
            return FeedbackResult.UNKNOWN_REQUEST
        if value is not None and found.model is not None:
            # the rating counts in measured quality like any other outcome; a later one
            # for the same request replaces it
            rated = feedback_outcome(request_id, found, value, source, time.time())
            await store.add_outcomes([rated], replace=True)
    if found.route is not None and found.model is not None:
        rolling.add_quality(found.route, found.model, request_id, value)
    return FeedbackResult.STORED


async def _served_earlier(
    store: Store | None, records: RecordSink, request_id: str
) -> Served | None:
    """A request this process does not remember (served before a restart, or by another
    worker): from the store, or from the in-memory records."""
    if store is not None:
        stored = await store.get(request_id)
        if stored is None:
            return None
        return Served(
            stored["route"], stored["final_model"], stored["client_key_id"], stored["task"],
            stored["final_reported_model"], stored["cost_usd"], stored["latency_ms"],
        )  # fmt: skip
    found = records.find(request_id) if isinstance(records, MemorySink) else None
    return None if found is None else served(found)


async def _retry(attempt: Callable[[], Awaitable[bool]], tries: int) -> bool:
    for n in range(tries):
        if n:
            await asyncio.sleep(0.1)
        if await attempt():
            return True
    return False
