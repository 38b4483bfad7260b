"""The columns drift groups and compares by, taken from a record when it is stored.

A request's task, the fingerprint of the answer, the planner's prompt token count and its
first attempt (the route's first choice: its model, how it ended and the version it reported)
live in the JSON body too; as columns they are read by a covering index (migration 8) instead
of a JSON parse per row. The store's row encoder fills them off the request path; migration 8
fills them for rows stored before, from the body.
"""

from __future__ import annotations

from typing import Any

from modelroute.records.record import RequestRecord

# (column, SQL type, its path in the body for SQLite's json_extract, the same in PostgreSQL)
DRIFT_COLUMN_SPECS: tuple[tuple[str, str, str, str], ...] = (
    ("task", "TEXT", "$[0]", "body ->> 0"),
    ("final_fingerprint", "TEXT", "$[7]", "body ->> 7"),
    ("prompt_tokens", "BIGINT", "$[20][1]", "(body -> 20 ->> 1)::bigint"),
    ("first_model", "TEXT", "$[18][0][0]", "body -> 18 -> 0 ->> 0"),
    ("first_outcome", "TEXT", "$[18][0][7]", "body -> 18 -> 0 ->> 7"),
    ("first_reported_model", "TEXT", "$[18][0][12]", "body -> 18 -> 0 ->> 12"),
)
DRIFT_COLUMNS: tuple[str, ...] = tuple(spec[0] for spec in DRIFT_COLUMN_SPECS)
_NO_ATTEMPT = (None, None, None)


def drift_columns(r: RequestRecord) -> tuple[Any, ...]:
    """A record's ``DRIFT_COLUMNS``: the same values migration 8 reads from its body."""
    pi = r.planner_input
    tokens = None if pi is None else pi.context.prompt_tokens
    if r.attempts:
        a = r.attempts[0]
        first: tuple[Any, ...] = (a.model, str(a.outcome), a.reported_model)
    else:
        first = _NO_ATTEMPT
    return (r.task, r.final_fingerprint, tokens, *first)
