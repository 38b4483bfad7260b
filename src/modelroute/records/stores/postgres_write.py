"""How the PostgreSQL store writes a batch: one statement with the request rows, the planner
statistics they refer to and the batch's rollup, as JSON arrays.

``json_populate_recordset`` turns the arrays back into typed rows by column name;
``ON CONFLICT DO NOTHING`` skips what is stored already; the same statement adds the batch's
rollup for the dashboard (a batch some of whose records were stored already undoes itself and
goes in two steps, counting only its new records). One round trip, one implicit transaction,
the same prepared statement every time, and idempotent (a replayed spool stores nothing
twice). The row layout is ``body.py``'s, shared with SQLite.

Why JSON rather than typed arrays (``unnest($1::text[], ...)``) or COPY: asyncpg encodes every
array element in Python on the event loop, ~0.3 us a value; a batch of 500 held the loop for
10-15 ms. One JSON text built by orjson in a worker thread holds it for ~1.5 ms, the parsing
moves to the server (another core here), and throughput is the same (measured: 16k vs 17k
records/s, client CPU 14 vs 25 us a record). Floats survive the trip exactly (shortest
round-trip repr); non-finite ones are sent as PostgreSQL's own spellings.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import asyncpg
import orjson

from modelroute.records import rollups
from modelroute.records.record import RequestRecord
from modelroute.records.rollups import Contribution, Rollup, contribution
from modelroute.records.stores.body import REQUEST_COLUMNS, RowEncoder
from modelroute.records.stores.common import unique

_REQUEST_COLS = ", ".join(REQUEST_COLUMNS)
# The rollup tables in the order of ``_INSERT``'s parameters 3 to 7.
_ROLLUP_PARAMETERS: tuple[tuple[str, tuple[str, ...], int], ...] = (
    *(
        (rollups.table(kind, grain), columns, key)
        for grain in rollups.WIDTHS
        for kind, columns, key in (
            ("rollup", rollups.ROLLUP_COLUMNS, 3),
            ("rejections", rollups.REJECTION_COLUMNS, 4),
        )
    ),
    ("policy_traffic", rollups.POLICY_COLUMNS, 1),
)
_STORED = (
    "WITH stats AS (INSERT INTO planner_stats (stats_id, stats) SELECT stats_id, stats "
    "FROM json_populate_recordset(NULL::planner_stats, $2::json) "
    "ON CONFLICT (stats_id) DO NOTHING), "
    f"stored AS (INSERT INTO requests ({_REQUEST_COLS}) SELECT {_REQUEST_COLS} "
    "FROM json_populate_recordset(NULL::requests, $1::json) "
    "ON CONFLICT (request_id) DO NOTHING RETURNING request_id)"
)
# The text of the error that undoes ``_INSERT`` when some record was stored already.
_SOME_STORED = "some records were stored already"


def _upserts(first: int) -> list[str]:
    """The rollup's upserts from JSON rows, parameters ``first`` to ``first + 4``."""
    out = []
    for n, (name, columns, key) in enumerate(_ROLLUP_PARAMETERS, first):
        rows = f"SELECT {', '.join(columns)} FROM json_populate_recordset(NULL::{name}, ${n}::json)"
        upsert = rollups.upsert_sql(name, columns, key, rows, dialect="postgres")
        out.append(f"{name}_added AS ({upsert})")
    return out


def _insert_statement() -> str:
    """A batch in one statement: the rows (parameter 1) with the planner statistics they
    refer to (2) inserted, and the batch's rollup (3-7: each table's rows as JSON, in key
    order) added. When fewer rows than the batch's records (8) were inserted (some were stored
    already: a replayed spool), the statement fails, undoing all of it, and ``store_batch``
    stores the batch in two steps instead (``_INSERT_RETURNING``, then the new records'
    rollup)."""
    undo = f"CAST('{_SOME_STORED}: ' || n AS INT)"  # not a constant: raised only when reached
    return (
        f"{_STORED}, counted AS (SELECT COUNT(*) AS n FROM stored), {', '.join(_upserts(3))} "
        f"SELECT CASE WHEN n = $8::int THEN n ELSE {undo} END FROM counted"
    )


_INSERT = _insert_statement()
_INSERT_RETURNING = f"{_STORED} SELECT request_id FROM stored"
_ADD_ROLLUP = f"WITH {', '.join(_upserts(1))} SELECT 1"
FLOATS = ("started_at", "latency_ms", "cost_usd")
_REASON = REQUEST_COLUMNS.index("decision_reason")


_NON_FINITE = (float("inf"), float("-inf"))


class Payload(NamedTuple):
    requests: str  # JSON arrays of row objects
    stats: str
    rollup: tuple[str, ...]  # ``_INSERT``'s parameters 3-7: the rollup when every record is new
    records: int  # how many (one per request id)
    added: list[tuple[str, Contribution]]  # each record's id and contribution to the rollups


def batch_payload(encoder: RowEncoder, batch: list[RequestRecord]) -> Payload:
    """The batch as two JSON arrays of row objects (requests, planner statistics), and its
    rollup."""
    requests: list[dict[str, Any]] = []
    stats: dict[str, str] = {}
    rollup = Rollup()
    added: list[tuple[str, Contribution]] = []
    for record in unique(batch):
        values = encoder.row(record, stats)
        added.append((record.request_id, contribution(record, values[_REASON])))
        rollup.add(added[-1][1])
        row = dict(zip(REQUEST_COLUMNS, values, strict=True))
        row["body"] = orjson.Fragment(row["body"])  # JSON already: nested, not re-encoded
        requests.append(finite(row, FLOATS))
    planner = [{"stats_id": k, "stats": orjson.Fragment(v)} for k, v in stats.items()]
    return Payload(
        orjson.dumps(requests).decode(),
        orjson.dumps(planner).decode(),
        _rollup_payload(rollup),
        len(requests),
        added,
    )


def _rollup_payload(rollup: Rollup) -> tuple[str, ...]:
    tables = {
        **{rollups.table("rollup", g): rollup.rows(g) for g in rollups.WIDTHS},
        **{rollups.table("rejections", g): rollup.rejection_rows(g) for g in rollups.WIDTHS},
        "policy_traffic": rollup.policy_rows(),
    }
    return tuple(
        orjson.dumps([dict(zip(columns, v, strict=True)) for v in tables[name]]).decode()
        for name, columns, _ in _ROLLUP_PARAMETERS
    )


def finite(row: dict[str, Any], floats: tuple[str, ...]) -> dict[str, Any]:
    # JSON has no NaN or infinity (orjson would write null); PostgreSQL's float8 reads these.
    for column in floats:
        value = row[column]
        if value is not None and (value != value or value in _NON_FINITE):
            row[column] = str(value).replace("inf", "Infinity").replace("nan", "NaN")
    return row


async def store_batch(conn: Any, payload: Payload) -> None:
    """Store a batch (``batch_payload``'s) on ``conn``: in one statement when every record is
    new, else in two steps inside one transaction."""
    try:
        await conn.execute(
            _INSERT, payload.requests, payload.stats, *payload.rollup, payload.records
        )
    except asyncpg.InvalidTextRepresentationError as exc:
        if _SOME_STORED not in str(exc):
            raise
        await _store_partly(conn, payload)


async def _store_partly(conn: Any, payload: Payload) -> None:
    """A batch some of whose records were stored already: insert the others and add their
    rollup, in one transaction."""
    async with conn.transaction():
        new = {
            row[0] for row in await conn.fetch(_INSERT_RETURNING, payload.requests, payload.stats)
        }
        rollup = Rollup().extend(c for request_id, c in payload.added if request_id in new)
        if rollup.records:
            await conn.execute(_ADD_ROLLUP, *_rollup_payload(rollup))
