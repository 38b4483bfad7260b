"""What both stores do in Python around their SQL: a batch's records, one per request id;
whole records put together from fetched rows; the quality figures from theirs."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from modelroute.records.record import RequestRecord
from modelroute.records.stores.base import QualityKey
from modelroute.records.stores.body import request_dict


def unique(batch: Iterable[RequestRecord]) -> list[RequestRecord]:
    """The first record of each request id: a batch may repeat one (a replayed spool)."""
    seen: set[str] = set()
    out = []
    for record in batch:
        if record.request_id not in seen:
            seen.add(record.request_id)
            out.append(record)
    return out


def records_from(
    rows: Iterable[Any], stats: Mapping[str, Any], feedback_rows: Iterable[Any]
) -> list[dict[str, Any]]:
    """Whole records for request rows: ``stats`` the planner statistics they refer to (by
    id), ``feedback_rows`` their feedback (request_id and ``sql.FEEDBACK_COLUMNS``, in id
    order), joined as each record's ``feedback`` list."""
    feedback: dict[str, list[dict[str, Any]]] = {}
    for f in feedback_rows:
        entry = dict(f)
        feedback.setdefault(entry.pop("request_id"), []).append(entry)
    out = []
    for row in rows:
        data = request_dict(row, stats)
        data["feedback"] = feedback.get(row["request_id"], [])
        out.append(data)
    return out


def quality_from(rows: Iterable[Any]) -> dict[QualityKey, tuple[float, int]]:
    """``Store.quality``'s answer from the rows of ``sql.quality_sql``."""
    return {(r[0], r[1], r[2]): (float(r[3]), int(r[4])) for r in rows}
