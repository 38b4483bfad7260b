"""What a record store promises, and the parts both stores share (stats shape, export files).

A store is written to by ``RecordWriter`` in batches and read by stats, audit and the admin
endpoints. A store may set ``flush_size``, the most records the writer hands it at once while
it keeps up (the SQLite store does: its thread shares the serving core; see ``writer.py``).
Writes are idempotent: a request id already stored is skipped, so replaying a spool after a
partial failure stores every record exactly once.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

import orjson

from modelroute.outcomes.outcome import Outcome, OutcomeSource
from modelroute.records.record import TRANSIENT_FIELDS, Attempt, RequestRecord
from modelroute.types import Usage

ExportFormat = Literal["jsonl", "parquet"]
QualityKey = tuple[str | None, str | None, str | None]  # route, model, reported version
OutcomeScope = Literal["route", "task"]
# One stored outcome as the aggregates read it: route or task, model, version (the reported
# model, else the model), source, score, created_at.
ScoreRow = tuple[str, str, str, str, float, float]


class RecordRejected(ValueError):
    """The store refused the data itself (a constraint, a value it cannot represent), so no
    retry can succeed. ``RecordWriter`` isolates the offending records and sets them aside
    instead of letting one bad record hold up every record behind it."""


class Store(Protocol):
    @property
    def dialect(self) -> Literal["sqlite", "postgres"]:
        """The SQL the store speaks, for analyses that push their aggregates into the
        database (read-only: each store's is fixed)."""

    async def open(self) -> None:
        """Connect and bring the schema up to date (migrations run in order, once)."""

    async def close(self) -> None: ...

    async def write(self, batch: list[RequestRecord], *, backlog: int = 0) -> None:
        """Store a batch in one transaction; request ids already stored are skipped. Raises
        ``RecordRejected`` when the data itself is refused, anything else when the store is
        unavailable (the caller retries later). ``backlog`` is how many records wait behind
        this batch: a store that shares the CPU with the event loop gives way to it only
        while nothing is waiting."""

    async def get(self, request_id: str) -> dict[str, Any] | None:
        """``RequestRecord.to_dict()`` of the stored record, plus its ``feedback`` list."""

    async def get_many(self, request_ids: Sequence[str]) -> list[dict[str, Any]]:
        """The stored records among ``request_ids``, as ``get`` gives each, in one read (in no
        particular order; ids not stored are left out)."""

    def scan(
        self, *, since: float | None = None, route: str | None = None, page_size: int = 1000
    ) -> AsyncIterator[list[dict[str, Any]]]:
        """Whole records (as ``get`` gives them), oldest first, a page at a time; ``since``
        and ``route`` narrow them."""

    async def query(
        self,
        route: str | None = None,
        model: str | None = None,
        since: float | None = None,
        failed: bool = False,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Request rows (no attempts), newest first. ``failed`` keeps status != "ok" only."""

    async def count(self) -> int: ...

    async def ids(self) -> set[str]: ...

    async def stats(self, since: float | None = None) -> list[dict[str, Any]]:
        """One row per route × final model; see ``merge_stats`` for the keys."""

    async def add_feedback(
        self,
        request_id: str,
        score: float | None = None,
        label: str | None = None,
        source: str | None = None,
        comment: str | None = None,
    ) -> bool:
        """Store the request's feedback, replacing any it had: one request, one feedback.
        False when the request id is unknown."""

    async def quality(self, since: float | None = None) -> dict[QualityKey, tuple[float, int]]:
        """Mean feedback score and number of scored requests per (route, final model,
        reported model)."""

    async def add_outcomes(self, outcomes: Sequence[Outcome], *, replace: bool = False) -> int:
        """Store outcomes in one transaction; an ``outcome_id`` already stored is skipped
        (a resumed evaluation, a repeated import), or with ``replace`` overwritten (a later
        rating of the same request). Returns how many were new."""

    async def outcome_ids(self, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` are stored: what a resumed evaluation may skip."""

    async def outcomes(
        self,
        *,
        source: OutcomeSource | None = None,
        route: str | None = None,
        task: str | None = None,
        model: str | None = None,
        run: str | None = None,
        since: float | None = None,
        limit: int | None = None,
    ) -> list[Outcome]:
        """Stored outcomes, oldest first; each argument narrows them."""

    async def outcome_scores(
        self,
        by: OutcomeScope = "route",
        *,
        source: OutcomeSource | None = None,
        since: float | None = None,
    ) -> list[ScoreRow]:
        """What the quality aggregates need of each outcome with a ``by`` (route or task),
        and no more: far cheaper to read than whole outcomes, and read periodically by a
        gateway. Outcomes without a route (or task) are left out."""

    async def export(self, path: str | Path, format: ExportFormat = "jsonl") -> int:
        """Write every record (as ``get`` returns it) to ``path``; returns how many."""

    async def schema_version(self) -> int: ...

    async def read_sql(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """The rows of one read-only statement written for ``dialect`` (parameters ``?`` in
        SQLite, ``$1`` in PostgreSQL), as tuples: the aggregate queries of an analysis
        (drift) that live beside it rather than here."""

    async def rebuild_rollups(self) -> int:
        """Forget the dashboard's rollups and add them up again from every stored row (rows
        loaded around the writer, a repair); returns how many rows were added up. ``write``
        keeps them otherwise, adding each batch's new records."""

    async def remember_policy(
        self, policy_hash: str, version: str | None, source: str, text: str
    ) -> bool:
        """Keep a policy's text by its hash (the dashboard diffs versions); False when that
        hash was kept already."""

    async def add_snapshot(
        self, kind: str, computed_at: float, took_s: float, headline: str, data: str, text: str
    ) -> None:
        """Store an analysis result (``data``: JSON text) for the dashboard; the latest of a
        kind is what it shows, and only a few older ones are kept."""

    async def raise_alerts(self, alerts: Mapping[str, tuple[str, str]]) -> set[str]:
        """Keep alert conditions (condition -> (kind, evidence as JSON)) in one transaction;
        returns the conditions that were not kept already. Only a condition's raiser
        announces it, so it is announced once however many processes check for it."""

    async def raised_alerts(self) -> dict[str, str]:
        """The alert conditions kept (condition -> kind)."""

    async def clear_alerts(self, conditions: Iterable[str]) -> int:
        """Forget conditions that no longer hold (a recurrence is raised again)."""


def merge_stats(
    main: Iterable[Mapping[str, Any]], feedback: Iterable[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    """Join the per-group request figures with the per-group feedback figures.

    ``main`` rows: route, model, requests, errors, spend_usd, p50_latency_ms, p95_latency_ms.
    ``feedback`` rows: route, model, quality (mean score or None), feedback (row count).
    Percentiles are nearest-rank (the smallest latency with at least p of the group at or
    below it), computed the same way by both stores.
    """
    extra = {(f["route"], f["model"]): f for f in feedback}
    out = []
    for row in main:
        requests = int(row["requests"])
        errors = int(row["errors"] or 0)
        fb = extra.get((row["route"], row["model"]), {})
        out.append(
            {
                "route": row["route"],
                "model": row["model"],
                "requests": requests,
                "errors": errors,
                "error_rate": errors / requests if requests else 0.0,
                "spend_usd": float(row["spend_usd"] or 0.0),
                "p50_latency_ms": row["p50_latency_ms"],
                "p95_latency_ms": row["p95_latency_ms"],
                "quality": None if fb.get("quality") is None else float(fb["quality"]),
                "feedback": int(fb.get("feedback") or 0),
            }
        )
    out.sort(key=lambda r: (r["route"] or "", r["model"] or ""))
    return out


def unknown_format(format: str) -> ValueError:
    return ValueError(f"unknown export format {format!r}: expected 'jsonl' or 'parquet'")


class ExportFile:
    """Writes pages of stored records to JSON lines or Parquet. Synchronous: callers run it in
    a worker thread. Parquet uses a fixed schema derived from the record dataclasses, so pages
    with all-NULL columns still agree on types and the file is readable by DuckDB or pandas."""

    def __init__(self, path: str | Path, format: ExportFormat) -> None:
        if format not in ("jsonl", "parquet"):
            raise unknown_format(format)
        self.path = Path(path)
        self.format = format
        self.count = 0
        self._jsonl = self.path.open("wb") if format == "jsonl" else None
        self._parquet: Any = None

    def write(self, page: list[dict[str, Any]]) -> None:
        self.count += len(page)
        if self._jsonl is not None:
            self._jsonl.write(b"".join(orjson.dumps(r, option=_JSON_OPTS) + b"\n" for r in page))
            return
        import pyarrow as pa  # optional dependency: only a Parquet export needs it

        schema = _arrow_schema()
        if self._parquet is None:
            import pyarrow.parquet as pq

            self._parquet = pq.ParquetWriter(str(self.path), schema)
        rows = [_flat(r) for r in page]
        self._parquet.write_table(pa.Table.from_pylist(rows, schema=schema))

    def close(self) -> None:
        if self._jsonl is not None:
            self._jsonl.close()
        elif self._parquet is not None:
            self._parquet.close()
        else:  # no rows at all: still leave a valid, empty Parquet file
            self._parquet = None
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pylist([], schema=_arrow_schema()), str(self.path))


_JSON_OPTS = orjson.OPT_NON_STR_KEYS


def _flat(record: dict[str, Any]) -> dict[str, Any]:
    """JSON-encode the free-form columns (metadata, decision, feedback) for Parquet."""
    out = dict(record)
    for key in ("metadata", "decision", "planner_input", "feedback"):
        if out.get(key) is not None:
            out[key] = orjson.dumps(out[key], option=_JSON_OPTS).decode()
    return out


def _arrow_schema() -> Any:
    import pyarrow as pa

    scalar = {"str": pa.string(), "float": pa.float64(), "int": pa.int64(), "bool": pa.bool_()}
    scalar |= {"RequestStatus": pa.string(), "AttemptResult": pa.string()}  # StrEnums

    def struct(cls: type[Any]) -> Any:
        return pa.struct([(f.name, kind(str(f.type))) for f in dataclasses.fields(cls)])

    def kind(annotation: str) -> Any:
        base = annotation.removesuffix(" | None")
        if base in scalar:
            return scalar[base]
        if base == "Usage":
            return struct(Usage)
        if base == "list[Attempt]":
            return pa.list_(struct(Attempt))
        if base.startswith(("dict[", "Mapping[")) or base == "PlannerInput":  # JSON text
            return pa.string()
        raise TypeError(f"no Parquet type for a record field of type {annotation}")

    fields = [
        (f.name, kind(str(f.type)))
        for f in dataclasses.fields(RequestRecord)
        if f.name not in TRANSIENT_FIELDS
    ]
    return pa.schema([*fields, ("feedback", pa.string())])
