"""The tables records are stored in and how they change over time.

Both stores share this module: one list of versioned migrations written once, with the few
dialect differences (float, boolean and JSON column types, the feedback id) spelled as
placeholders that ``render`` fills in per dialect, or, where the dialects differ more, a list
of statements for each. A migration is never edited once released; a change to the tables is a
new step at the end of ``MIGRATIONS``.

The steps, in order: (1) requests and attempts, indexed by time; (2) the policy version, the
client key and the cache-write and reasoning token counts; (3) feedback, and the indexes that
the per-route and per-model reads use; (4) one feedback per request: a later one replaces the
earlier, so a request counts once in measured quality however often it is rated; (5) one row
per record: the columns reads filter and aggregate on, everything else in one JSON ``body``
(see ``body.py``), and the statistics the planner read in ``planner_stats``; (6) outcomes:
one row per ``Outcome`` (``outcome_sql.OUTCOME_COLUMNS``), indexed for the reads that aggregate them
(route and model, task, source and time, run); (7) the columns derived from each record when
it is stored (``derived.py``: the task key, the decision's reason, the token counts), filled
for stored rows by ``DERIVE``, with a covering index for the per-task aggregates of the audit;
(8) drift detection: the columns drift compares by (``drift_columns.py``: written by the
row encoder, filled from the body for stored rows), one covering index whose leading columns
are the groups drift compares, so its aggregates stream through the index without a sort or
a read of the table, and ``drift_alerts``, the alert conditions already raised (each is
raised once). Step 4 moves existing rows with ``FOLD``, a step each store runs in Python
(``legacy.py`` reads the old layout, ``body.py`` writes the new one) so that floats keep every
digit (SQLite's JSON functions print 15).

The statements the stores run against these tables are in ``sql.py`` (records, feedback,
drift alerts, policies, snapshots) and ``outcome_sql.py`` (outcomes).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from modelroute.records.drift_columns import DRIFT_COLUMN_SPECS as DRIFT_SPECS
from modelroute.records.rollups import tables as rollup_tables
from modelroute.records.stores.legacy import DROPPED_COLUMNS

Dialect = Literal["sqlite", "postgres"]


_TYPES: dict[Dialect, dict[str, str]] = {
    "sqlite": {
        "real": "REAL",
        "bool": "INTEGER",
        "json": "TEXT",
        "id_pk": "INTEGER PRIMARY KEY",
    },
    "postgres": {
        "real": "DOUBLE PRECISION",
        "bool": "BOOLEAN",
        "json": "JSONB",
        "id_pk": "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
    },
}


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    description: str
    # templates: {real} {bool} {json} {id_pk}; one tuple for both dialects, or one each
    statements: tuple[str, ...] | Mapping[Dialect, tuple[str, ...]]


# A step of a migration that each store runs in Python: fold every version-3 request row and
# its attempt rows into one row of the new layout (SQLite: into requests_v4; PostgreSQL: into
# the new body column of requests).
FOLD = "-- fold version-3 rows into one row per record"
# A step each store dispatches itself: the rollups of every stored row, added up by the
# database (``rollups.backfill_sql``; the PostgreSQL store first gives it room to hash).
ROLLUP = "-- add up the rollups of every stored row"
# A step each store runs in Python: fill the derived columns (``derived.py``) of every row.
DERIVE = "-- derive the task key, decision reason and token columns of every row"

_REQUESTS_V4 = """CREATE TABLE {table} (
    request_id TEXT PRIMARY KEY,
    started_at {real} NOT NULL,
    route TEXT, final_model TEXT, final_reported_model TEXT,
    status TEXT NOT NULL,
    latency_ms {real} NOT NULL,
    cost_usd {real} NOT NULL,
    policy_hash TEXT NOT NULL,
    body {json} NOT NULL)"""
_PLANNER_STATS = "CREATE TABLE planner_stats (stats_id TEXT PRIMARY KEY, stats {json} NOT NULL)"
_INDEXES = (
    "CREATE INDEX requests_started_at ON requests (started_at)",
    # (column, started_at): serves both the filter and the newest-first order of query().
    "CREATE INDEX requests_route ON requests (route, started_at)",
    "CREATE INDEX requests_final_model ON requests (final_model, started_at)",
)


_DERIVED_COLUMNS = (
    "ALTER TABLE requests ADD COLUMN task_key TEXT",
    "ALTER TABLE requests ADD COLUMN decision_reason TEXT",
    "ALTER TABLE requests ADD COLUMN input_tokens BIGINT",
    "ALTER TABLE requests ADD COLUMN output_tokens BIGINT",
    "ALTER TABLE requests ADD COLUMN cached_input_tokens BIGINT",
    "ALTER TABLE requests ADD COLUMN cache_write_tokens BIGINT",
)
_TRAFFIC = "status, cost_usd, input_tokens, output_tokens, cached_input_tokens, cache_write_tokens"

# Group columns first (drift's GROUP BY is this prefix), then time, then what is aggregated.
DRIFT_INDEX_COLUMNS: tuple[str, ...] = (
    "route", "final_model", "final_reported_model", "final_fingerprint", "task", "first_model",
    "first_reported_model", "first_outcome", "started_at", "status", "latency_ms", "cost_usd",
    "prompt_tokens",
)  # fmt: skip
_DRIFT_INDEX = f"CREATE INDEX requests_drift ON requests ({', '.join(DRIFT_INDEX_COLUMNS)})"
_DRIFT_ALERTS = """CREATE TABLE drift_alerts (
    condition TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    raised_at {real} NOT NULL,
    evidence {json} NOT NULL)"""

_POLICIES = """CREATE TABLE policies (
    policy_hash TEXT PRIMARY KEY,
    version TEXT,
    source TEXT NOT NULL,
    text TEXT NOT NULL,
    stored_at {real} NOT NULL)"""
_SNAPSHOTS = """CREATE TABLE analysis_snapshots (
    id {id_pk},
    kind TEXT NOT NULL,
    computed_at {real} NOT NULL,
    took_s {real} NOT NULL,
    headline TEXT NOT NULL,
    data {json} NOT NULL,
    text TEXT NOT NULL)"""

BOOTSTRAP = (
    "CREATE TABLE IF NOT EXISTS schema_migrations "
    "(version INTEGER PRIMARY KEY, applied_at {real} NOT NULL)"
)

MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "requests and attempts",
        (
            """CREATE TABLE requests (
                request_id TEXT PRIMARY KEY,
                started_at {real} NOT NULL,
                route TEXT, task TEXT, selected_by TEXT,
                endpoint TEXT NOT NULL,
                streamed {bool} NOT NULL,
                status TEXT NOT NULL,
                http_status INTEGER NOT NULL,
                failure TEXT, error TEXT,
                final_model TEXT, final_reported_model TEXT, final_fingerprint TEXT,
                policy_hash TEXT NOT NULL,
                confidence {real},
                escalations INTEGER NOT NULL,
                input_tokens BIGINT, output_tokens BIGINT, cached_input_tokens BIGINT,
                cost_usd {real} NOT NULL,
                price_unknown {bool} NOT NULL,
                latency_ms {real} NOT NULL,
                ttft_ms {real},
                attempt_count INTEGER NOT NULL,
                metadata {json} NOT NULL,
                decision {json},
                prompt TEXT, answer TEXT)""",
            "CREATE INDEX requests_started_at ON requests (started_at)",
            """CREATE TABLE attempts (
                request_id TEXT NOT NULL,
                seq INTEGER NOT NULL,
                model TEXT NOT NULL, provider TEXT NOT NULL, model_id TEXT NOT NULL,
                tier INTEGER NOT NULL,
                started_ms {real} NOT NULL, latency_ms {real} NOT NULL, ttft_ms {real},
                outcome TEXT NOT NULL, failure TEXT, status INTEGER, message TEXT,
                retry_after_s {real},
                reported_model TEXT, fingerprint TEXT,
                input_tokens BIGINT, output_tokens BIGINT, cached_input_tokens BIGINT,
                cost_usd {real},
                price_known {bool} NOT NULL,
                confidence {real},
                PRIMARY KEY (request_id, seq))""",
        ),
    ),
    Migration(
        2,
        "policy version, client key, cache-write and reasoning tokens",
        (
            "ALTER TABLE requests ADD COLUMN policy_version TEXT",
            "ALTER TABLE requests ADD COLUMN client_key_id TEXT",
            "ALTER TABLE requests ADD COLUMN cache_write_tokens BIGINT",
            "ALTER TABLE requests ADD COLUMN reasoning_tokens BIGINT",
            "ALTER TABLE attempts ADD COLUMN cache_write_tokens BIGINT",
            "ALTER TABLE attempts ADD COLUMN reasoning_tokens BIGINT",
        ),
    ),
    Migration(
        3,
        "feedback; indexes for per-route and per-model reads",
        (
            """CREATE TABLE feedback (
                id {id_pk},
                request_id TEXT NOT NULL REFERENCES requests (request_id),
                score {real}, label TEXT, source TEXT, comment TEXT,
                created_at {real} NOT NULL)""",
            "CREATE INDEX feedback_request_id ON feedback (request_id)",
            # (column, started_at): serves both the filter and the newest-first order of query().
            "CREATE INDEX requests_route ON requests (route, started_at)",
            "CREATE INDEX requests_final_model ON requests (final_model, started_at)",
        ),
    ),
    Migration(
        4,
        "one feedback per request: the latest of each request kept, then a unique key",
        (
            # Ids only grow, so the highest id of a request is its latest feedback.
            "DELETE FROM feedback WHERE id NOT IN "
            "(SELECT MAX(id) FROM feedback GROUP BY request_id)",
            "DROP INDEX feedback_request_id",
            "CREATE UNIQUE INDEX feedback_request_id_unique ON feedback (request_id)",
        ),
    ),
    Migration(
        5,
        "one row per record: attempts, decision and planner input in body; planner_stats",
        {
            # SQLite cannot drop NOT NULL columns without rewriting the table once per column:
            # build the new table, fold the rows into it, swap (its documented recipe, run with
            # foreign keys off so feedback's reference to requests survives the swap).
            "sqlite": (
                _REQUESTS_V4.replace("{table}", "requests_v4"),
                _PLANNER_STATS,
                FOLD,
                "DROP TABLE attempts",
                "DROP TABLE requests",
                "ALTER TABLE requests_v4 RENAME TO requests",
                *_INDEXES,
            ),
            "postgres": (
                "ALTER TABLE requests ADD COLUMN body {json}",
                _PLANNER_STATS,
                FOLD,
                "ALTER TABLE requests ALTER COLUMN body SET NOT NULL",
                "ALTER TABLE requests " + ", ".join(f"DROP COLUMN {c}" for c in DROPPED_COLUMNS),
                "DROP TABLE attempts",
            ),
        },
    ),
    Migration(
        6,
        "outcomes: one row per measured score, indexed for the aggregates' reads",
        (
            """CREATE TABLE outcomes (
                outcome_id TEXT PRIMARY KEY,
                source TEXT NOT NULL, grader TEXT NOT NULL,
                score {real} NOT NULL,
                model TEXT NOT NULL,
                created_at {real} NOT NULL,
                prompt_id TEXT, prompt_hash TEXT, task TEXT, route TEXT,
                reported_model TEXT, fingerprint TEXT,
                cost_usd {real}, latency_ms {real},
                request_id TEXT, run TEXT,
                confidences {json} NOT NULL, detail {json} NOT NULL)""",
            "CREATE INDEX outcomes_route_model ON outcomes (route, model)",
            "CREATE INDEX outcomes_task ON outcomes (task)",
            "CREATE INDEX outcomes_source_created_at ON outcomes (source, created_at)",
            "CREATE INDEX outcomes_run ON outcomes (run)",
        ),
    ),
    Migration(
        7,
        "task key, decision reason and token counts as columns, computed for stored rows; "
        "a covering index for reads that add up traffic per task",
        {
            "sqlite": (
                *_DERIVED_COLUMNS,
                DERIVE,
                # In the order of GROUP BY task, route, model, reason: SQLite aggregates it
                # in one pass over the index, never reading the rows (whose bodies make a
                # scan of the table ten times larger) nor sorting them.
                "CREATE INDEX requests_task_traffic ON requests (task_key, route, final_model, "
                f"decision_reason, started_at, {_TRAFFIC})",
            ),
            "postgres": (
                *_DERIVED_COLUMNS,
                DERIVE,
                # A task's requests by how they were served: one group's sample is a range.
                "CREATE INDEX requests_task_key ON requests (task_key, route, final_model, "
                "decision_reason, started_at) INCLUDE (request_id)",
                # By time: PostgreSQL groups with a hash, so the index serves the time range,
                # and its INCLUDE columns let the scan skip the table (index-only scan).
                "CREATE INDEX requests_traffic ON requests (started_at) INCLUDE (task_key, "
                f"route, final_model, decision_reason, {_TRAFFIC})",
            ),
        },
    ),
    Migration(
        8,
        "drift: columns derived from the body, a covering index for its groups, raised alerts",
        {
            "sqlite": (
                *(f"ALTER TABLE requests ADD COLUMN {c} {kind}" for c, kind, _, _ in DRIFT_SPECS),
                "UPDATE requests SET "
                + ", ".join(f"{c} = json_extract(body, '{path}')" for c, _, path, _ in DRIFT_SPECS),
                _DRIFT_INDEX,
                _DRIFT_ALERTS,
            ),
            "postgres": (
                "ALTER TABLE requests "
                + ", ".join(f"ADD COLUMN {c} {kind}" for c, kind, _, _ in DRIFT_SPECS),
                "UPDATE requests SET " + ", ".join(f"{c} = {e}" for c, _, _, e in DRIFT_SPECS),
                _DRIFT_INDEX,
                _DRIFT_ALERTS,
            ),
        },
    ),
    Migration(
        9,
        "the dashboard: per-minute and per-hour rollups added up from the stored rows, policy "
        "texts, analysis snapshots; indexes for the explorer's status filter and outcomes "
        "by request",
        (
            *rollup_tables("{real}"),
            ROLLUP,
            _POLICIES,
            _SNAPSHOTS,
            "CREATE INDEX analysis_snapshots_kind ON analysis_snapshots (kind, computed_at)",
            "CREATE INDEX requests_status ON requests (status, started_at)",
            "CREATE INDEX outcomes_request_id ON outcomes (request_id)",
        ),
    ),
]

CURRENT_VERSION = MIGRATIONS[-1].version


def render(template: str, dialect: Dialect) -> str:
    return template.format(**_TYPES[dialect])


def pending(
    current: int, dialect: Dialect, target: int | None = None
) -> list[tuple[int, list[str]]]:
    """The steps that take a database at ``current`` to ``target`` (the latest by default)."""
    top = CURRENT_VERSION if target is None else target
    return [
        (m.version, [render(s, dialect) for s in _statements(m, dialect)])
        for m in MIGRATIONS
        if current < m.version <= top
    ]


def _statements(migration: Migration, dialect: Dialect) -> tuple[str, ...]:
    steps = migration.statements
    return steps if isinstance(steps, tuple) else steps[dialect]
