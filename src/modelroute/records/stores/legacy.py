"""Reading the tables as they were up to schema version 3 (a column per field in ``requests``,
one ``attempts`` row per attempt), for the migration that folds them into one row per record.
Nothing else reads this layout."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from modelroute.records.record import RequestRecord

TOKENS = (
    "input_tokens",
    "output_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
)
# The columns dropped from ``requests`` (the ones kept are in ``body.REQUEST_COLUMNS``).
DROPPED_COLUMNS: tuple[str, ...] = (
    "task", "selected_by", "endpoint", "streamed", "http_status", "failure", "error",
    "final_fingerprint", "policy_version", "client_key_id", "confidence", "escalations",
    *TOKENS, "price_unknown", "ttft_ms", "attempt_count", "metadata", "decision", "prompt",
    "answer",
)  # fmt: skip
_REQUEST_BOOLS = ("streamed", "price_unknown")


def _usage(row: Any) -> dict[str, int] | None:
    if row["input_tokens"] is None:
        return None
    return {name: row[name] or 0 for name in TOKENS}


def _loads(value: Any) -> Any:
    return None if value is None else orjson.loads(value)


def _attempt(row: Any) -> dict[str, Any]:
    data = {k: v for k, v in dict(row).items() if k not in ("request_id", "seq", *TOKENS)}
    data["price_known"] = bool(data["price_known"])
    data["usage"] = _usage(row)
    return data


def record(row: Any, attempts: Iterable[Any]) -> RequestRecord:
    """One version-3 ``requests`` row and its ``attempts`` rows, as a record."""
    data = {k: v for k, v in dict(row).items() if k not in TOKENS}
    for name in _REQUEST_BOOLS:
        data[name] = bool(data[name])
    data["metadata"] = _loads(data["metadata"]) or {}
    data["decision"] = _loads(data["decision"])
    data["usage"] = _usage(row)
    data["attempts"] = [_attempt(a) for a in sorted(attempts, key=lambda a: a["seq"])]
    return RequestRecord.from_dict(data)
