"""The SQL drift runs, in both dialects: aggregates in the database, bounded samples out of it.

Request aggregates come from one pass over the ``requests_drift`` index (migration 8): its
leading columns are the groups, so the GROUP BY streams through the index in order, with no
sort and no read of the table; both windows are summed in the same pass. Distribution tests
read a random sample per group and window of about ``sample_size`` values: each row is kept
with the probability that gives that many (Bernoulli sampling in the database), so only the
sample crosses into Python.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from modelroute.analysis.drift.settings import Windows
from modelroute.records.stores.base import Store

_SQLITE_MASK = 1 << 20  # random() & (2**20 - 1) is uniform on [0, 2**20)


class Dialect(NamedTuple):
    mark: Callable[[int], str]  # the n-th parameter (1-based)
    share: Callable[[int], str]  # the n-th parameter, a probability
    same: str  # NULL-safe equality
    hint: str  # which index the aggregate reads (SQLite's planner needs telling)
    keep: Callable[[str], str]  # a condition true with the probability held by an expression


_DIALECTS = {
    "sqlite": Dialect(
        lambda n: f"?{n}",
        lambda n: f"?{n}",
        "IS",
        "INDEXED BY requests_drift",
        lambda p: f"(random() & {_SQLITE_MASK - 1}) < ({p}) * {_SQLITE_MASK}",
    ),
    "postgres": Dialect(
        lambda n: f"${n}",
        lambda n: f"${n}::float8",  # else inferred from CASE's ELSE 0 as an integer
        "IS NOT DISTINCT FROM",
        "",
        lambda p: f"random() < ({p})",
    ),
}


def _dialect(store: Store) -> Dialect:
    return _DIALECTS[store.dialect]


class GroupRow(NamedTuple):
    """Requests of both windows sharing every grouped value (``None`` where absent)."""

    route: str | None
    model: str | None  # the model that answered
    reported: str | None  # the version its provider reported
    fingerprint: str | None
    task: str | None
    first_model: str | None  # the first attempt: the route's first choice
    first_reported: str | None
    first_outcome: str | None  # ok, failed, low_confidence, cancelled, skipped
    n_current: int
    n_baseline: int
    ok_current: int
    ok_baseline: int
    cost_current: float  # summed over requests answered ok
    cost_baseline: float
    first_at: float
    last_at: float


_GROUP_COLUMNS = (
    "route, final_model, final_reported_model, final_fingerprint, task, first_model, "
    "first_reported_model, first_outcome"
)


async def groups(store: Store, w: Windows) -> list[GroupRow]:
    d = _dialect(store)
    cur, base, end = d.mark(1), d.mark(2), d.mark(3)
    in_cur = f"started_at >= {cur}"
    sql = (
        f"SELECT {_GROUP_COLUMNS}, "
        f"SUM(CASE WHEN {in_cur} THEN 1 ELSE 0 END), COUNT(*), "
        f"SUM(CASE WHEN {in_cur} AND status = 'ok' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN status = 'ok' THEN 1 ELSE 0 END), "
        f"SUM(CASE WHEN {in_cur} AND status = 'ok' THEN cost_usd ELSE 0 END), "
        "SUM(CASE WHEN status = 'ok' THEN cost_usd ELSE 0 END), "
        "MIN(started_at), MAX(started_at) "
        f"FROM requests {d.hint} WHERE started_at >= {base} AND started_at < {end} "
        f"GROUP BY {_GROUP_COLUMNS}"
    )
    rows = await store.read_sql(sql, (w.current_start, w.baseline_start, w.end))
    out = []
    for r in rows:
        n_cur, n_all, ok_cur, ok_all = int(r[8]), int(r[9]), int(r[10]), int(r[11])
        cost_cur, cost_all = float(r[12] or 0.0), float(r[13] or 0.0)
        out.append(
            GroupRow(
                r[0],
                r[1],
                r[2],
                r[3],
                r[4],
                r[5],
                r[6],
                r[7],
                n_cur,
                n_all - n_cur,
                ok_cur,
                ok_all - ok_cur,
                cost_cur,
                cost_all - cost_cur,
                float(r[14]),
                float(r[15]),
            )
        )
    return out


def rate(n: int, size: int) -> float:
    """The probability of keeping each of ``n`` rows for a sample of about ``size``."""
    return 1.0 if n <= size else size / n


class ServedSample(NamedTuple):
    """Latency and cost of requests answered ok: the current window's per version, the
    baseline's of every version together."""

    current: dict[str | None, tuple[list[float], list[float]]]  # version -> (latency, cost)
    baseline: tuple[list[float], list[float]]


async def served_sample(
    store: Store,
    w: Windows,
    route: str,
    model: str,
    current_rates: Mapping[str | None, float],
    baseline_rate: float,
) -> ServedSample:
    """One pass over (route, model)'s index range; ``current_rates``: version -> the share
    of its current requests to keep."""
    d = _dialect(store)
    params: list[Any] = [w.current_start, w.baseline_start, w.end, route, model, baseline_rate]
    cases = []
    for version, share in current_rates.items():
        params += [version, share]
        cases.append(
            f"WHEN final_reported_model {d.same} {d.mark(len(params) - 1)} "
            f"THEN {d.share(len(params))}"
        )
    keep = f"CASE WHEN started_at < {d.mark(1)} THEN {d.share(6)} {' '.join(cases)} ELSE 0 END"
    sql = (
        f"SELECT started_at >= {d.mark(1)}, final_reported_model, latency_ms, cost_usd "
        f"FROM requests {d.hint} WHERE route = {d.mark(4)} AND final_model = {d.mark(5)} "
        f"AND started_at >= {d.mark(2)} AND started_at < {d.mark(3)} AND status = 'ok' "
        f"AND {d.keep(keep)}"
    )
    current: dict[str | None, tuple[list[float], list[float]]] = {
        v: ([], []) for v in current_rates
    }
    baseline: tuple[list[float], list[float]] = ([], [])
    for in_current, version, latency, cost in await store.read_sql(sql, params):
        into = current.get(version) if in_current else baseline
        if into is not None:
            into[0].append(float(latency))
            into[1].append(float(cost))
    return ServedSample(current, baseline)


async def prompt_tokens(
    store: Store, w: Windows, current_rate: float, baseline_rate: float
) -> tuple[list[float], list[float]]:
    """A random sample of the prompt token counts the planner saw, per window."""
    d = _dialect(store)
    keep = f"CASE WHEN started_at >= {d.mark(1)} THEN {d.share(4)} ELSE {d.share(5)} END"
    sql = (
        f"SELECT started_at >= {d.mark(1)}, prompt_tokens FROM requests {d.hint} "
        f"WHERE started_at >= {d.mark(2)} AND started_at < {d.mark(3)} "
        f"AND prompt_tokens IS NOT NULL AND {d.keep(keep)}"
    )
    params = (w.current_start, w.baseline_start, w.end, current_rate, baseline_rate)
    current: list[float] = []
    baseline: list[float] = []
    for in_current, tokens in await store.read_sql(sql, params):
        (current if in_current else baseline).append(float(tokens))
    return current, baseline


async def first_request(
    store: Store, route: str | None, model: str, reported: str | None, fingerprint: str | None,
    at: float,
) -> str | None:  # fmt: skip
    """The id of the request that first saw a version (its time is known from ``groups``)."""
    d = _dialect(store)
    sql = (
        f"SELECT request_id FROM requests WHERE final_model = {d.mark(1)} "
        f"AND started_at = {d.mark(2)} AND route {d.same} {d.mark(3)} "
        f"AND final_reported_model {d.same} {d.mark(4)} "
        f"AND final_fingerprint {d.same} {d.mark(5)} ORDER BY request_id LIMIT 1"
    )
    rows = await store.read_sql(sql, (model, at, route, reported, fingerprint))
    return str(rows[0][0]) if rows else None


class OutcomeRow(NamedTuple):
    """Outcomes of both windows for one (route, model, version, source)."""

    route: str
    model: str
    version: str
    source: str
    n_current: int
    n_baseline: int
    sum_current: float
    sum_baseline: float
    graded: int  # scores strictly between 0 and 1 (none: pass/fail)


async def outcome_groups(store: Store, w: Windows) -> list[OutcomeRow]:
    d = _dialect(store)
    cur = f"created_at >= {d.mark(1)}"
    sql = (
        "SELECT route, model, COALESCE(reported_model, model), source, "
        f"SUM(CASE WHEN {cur} THEN 1 ELSE 0 END), COUNT(*), "
        f"SUM(CASE WHEN {cur} THEN score ELSE 0 END), SUM(score), "
        "SUM(CASE WHEN score > 0 AND score < 1 THEN 1 ELSE 0 END) "
        f"FROM outcomes WHERE route IS NOT NULL AND created_at >= {d.mark(2)} "
        f"AND created_at < {d.mark(3)} "
        "GROUP BY route, model, COALESCE(reported_model, model), source"
    )
    rows = await store.read_sql(sql, (w.current_start, w.baseline_start, w.end))
    out = []
    for r in rows:
        n_cur, n_all = int(r[4]), int(r[5])
        s_cur, s_all = float(r[6] or 0.0), float(r[7] or 0.0)
        out.append(
            OutcomeRow(
                r[0], r[1], r[2], r[3], n_cur, n_all - n_cur, s_cur, s_all - s_cur, int(r[8])
            )
        )
    return out


async def scores(
    store: Store,
    w: Windows,
    key: tuple[str, str, str],
    current_rates: Mapping[str, float],
    baseline_rate: float,
) -> tuple[dict[str, list[float]], list[float]]:
    """Sampled scores of (route, model, source): current per version, baseline together."""
    d = _dialect(store)
    version = "COALESCE(reported_model, model)"
    params: list[Any] = [w.current_start, w.baseline_start, w.end, *key, baseline_rate]
    cases = []
    for v, share in current_rates.items():
        params += [v, share]
        cases.append(f"WHEN {version} = {d.mark(len(params) - 1)} THEN {d.share(len(params))}")
    keep = f"CASE WHEN created_at < {d.mark(1)} THEN {d.share(7)} {' '.join(cases)} ELSE 0 END"
    sql = (
        f"SELECT created_at >= {d.mark(1)}, {version}, score FROM outcomes "
        f"WHERE route = {d.mark(4)} AND model = {d.mark(5)} AND source = {d.mark(6)} "
        f"AND created_at >= {d.mark(2)} AND created_at < {d.mark(3)} AND {d.keep(keep)}"
    )
    current: dict[str, list[float]] = {v: [] for v in current_rates}
    baseline: list[float] = []
    for in_current, v, score in await store.read_sql(sql, params):
        into = current.get(v) if in_current else baseline
        if into is not None:
            into.append(float(score))
    return current, baseline
