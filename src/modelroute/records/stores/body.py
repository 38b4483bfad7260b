"""One record as one ``requests`` row, and back.

A row is the few columns that reads filter, sort and aggregate on (``REQUEST_COLUMNS``: time,
route, model, reported model, status, latency, cost, policy hash) and ``body``: one JSON array
holding everything else, in ``BODY_FIELDS`` order. Attempts are arrays in ``ATTEMPT_FIELDS``
order inside it, the planner's decision is the ``Decision``'s own fields in order (rejection
messages are rendered when read, not stored), and the planner's input is ``FEATURE_FIELDS``
plus the id of the statistics it read, which are stored once per distinct value in
``planner_stats`` (consecutive requests read the same snapshot).

Why so compact: SQLite's cost of storing a record grows with the bytes written (measured:
about 4 us per record plus 4 us per KB), and a column per field with key names in JSON made
~1.6 KB of a one-attempt record; this layout makes ~0.6 KB and needs no second row per
attempt. Arrays grow at the end only: a body shorter than ``BODY_FIELDS`` (written by an
older version) reads as if the missing fields were null.

JSON has no infinity or NaN (orjson writes null), so a non-finite float is written as its
Python spelling (``"inf"``, ``"-inf"``, ``"nan"``) and read back as the float. The one
exception is the planner's decision: its named tuples go to orjson as they are (its
``default`` copies each one's items in C, no Python per tuple) and a non-finite number in
it, which only an infinite price, latency or limit in a policy can produce, is stored as
null and read back as NaN where a rejection needs a number to print.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from operator import itemgetter
from typing import Any

import orjson

from modelroute.planner import Candidate, Decision, Estimate, Reason, Rejection, StatsSnapshot
from modelroute.planner.affinity import Affinity
from modelroute.planner.context import NO_LIMITS
from modelroute.planner.decision import Learned
from modelroute.records.derived import DERIVED_COLUMNS, decision_reason, derived, usage_columns
from modelroute.records.drift_columns import DRIFT_COLUMNS, drift_columns
from modelroute.records.planner_input import FLAGS, PlannerInput, context_from
from modelroute.records.record import Attempt, DecisionView, RequestRecord
from modelroute.records.task_key import task_key
from modelroute.types import Usage

# The columns of schema version 5 (what the fold of migration 5 writes).
V5_COLUMNS: tuple[str, ...] = (
    "request_id", "started_at", "route", "final_model", "final_reported_model", "status",
    "latency_ms", "cost_usd", "policy_hash", "body",
)  # fmt: skip
# Since version 7, the derived columns (``derived.py``) sit before the body, and since
# version 8 drift's (``drift_columns.py``) after them.
REQUEST_COLUMNS: tuple[str, ...] = (*V5_COLUMNS[:-1], *DERIVED_COLUMNS, *DRIFT_COLUMNS, "body")
# Columns of a row that are not fields of the record it stores.
_NOT_FIELDS = frozenset({"body", *DERIVED_COLUMNS, *DRIFT_COLUMNS})
BODY_FIELDS: tuple[str, ...] = (
    "task", "selected_by", "endpoint", "streamed", "http_status", "failure", "error",
    "final_fingerprint", "policy_version", "client_key_id", "confidence", "escalations",
    "usage", "price_unknown", "ttft_ms", "metadata", "prompt", "answer", "attempts",
    "decision", "planner_input", "arm", "cache_hit", "cache_saved_usd", "session",
    "cache_similarity", "cache_embed_ms",
)  # fmt: skip
ATTEMPT_FIELDS: tuple[str, ...] = (
    "model", "provider", "model_id", "tier", "started_ms", "latency_ms", "ttft_ms", "outcome",
    "failure", "status", "message", "retry_after_s", "reported_model", "fingerprint", "usage",
    "cost_usd", "price_known", "confidence",
)  # fmt: skip
USAGE_FIELDS = (
    "input_tokens", "output_tokens", "cached_input_tokens", "cache_write_tokens",
    "reasoning_tokens",
)  # fmt: skip
FEATURE_FIELDS = (
    "requested", "prompt_tokens", "max_output_tokens", *FLAGS, "max_cost_usd",
    "max_latency_ms", "min_quality", "stats",
)  # fmt: skip
_BODY_FLOATS = ("confidence", "ttft_ms")
_ATTEMPT_FLOATS = ("started_ms", "latency_ms", "ttft_ms", "retry_after_s", "cost_usd", "confidence")
_LIMITS = ("max_cost_usd", "max_latency_ms", "min_quality")
_NAN = float("nan")
_STATS_CACHE = 256  # (snapshot, route) pairs remembered by one encoder
# orjson's default for the named tuples of a body (the decision's, the limits): a named
# tuple's items as a plain tuple, the same JSON array that list() gives, with one object
# built instead of two (the decision of a route with several candidates holds a dozen). Any
# other type orjson cannot write sends the row down list()'s path, as before.
_ARRAY = itemgetter(slice(None))


# --- writing -------------------------------------------------------------------------------


def _spelled(x: Any) -> Any:
    """A non-finite float as text JSON can carry; anything else unchanged."""
    return repr(x) if isinstance(x, float) and x - x != 0 else x


def _ok(x: float | None) -> bool:
    # x - x is 0 for a finite number, NaN for an infinite one or NaN
    return x is None or x - x == 0


def _usage(u: Usage | None) -> tuple[int, ...] | None:
    if u is None:
        return None
    return (
        u.input_tokens,
        u.output_tokens,
        u.cached_input_tokens,
        u.cache_write_tokens,
        u.reasoning_tokens,
    )


def _attempt(a: Attempt) -> tuple[Any, ...]:
    return (
        a.model, a.provider, a.model_id, a.tier, a.started_ms, a.latency_ms, a.ttft_ms,
        a.outcome, a.failure, a.status, a.message, a.retry_after_s, a.reported_model,
        a.fingerprint, _usage(a.usage), a.cost_usd, a.price_known, a.confidence,
    )  # fmt: skip


def _floats_finite(r: RequestRecord) -> bool:
    # One sum instead of a test per value: any infinity or NaN makes it non-finite (so may an
    # overflow of huge finite values, which only sends the record down the careful path).
    total = (r.confidence or 0.0) + (r.ttft_ms or 0.0)
    for a in r.attempts:
        total += (
            a.started_ms
            + a.latency_ms
            + (a.ttft_ms or 0.0)
            + (a.retry_after_s or 0.0)
            + (a.cost_usd or 0.0)
            + (a.confidence or 0.0)
        )
    return total - total == 0


def stats_json(stats: StatsSnapshot) -> str:
    """The canonical text of a (consulted) snapshot: equal snapshots, equal text."""
    data = stats.to_dict()
    groups = [data["models"], *data["routes"].values()]
    for figures in (f for group in groups for f in group.values()):
        for name, value in figures.items():
            figures[name] = _spelled(value)
    return orjson.dumps(data, option=orjson.OPT_SORT_KEYS).decode()


def stats_id(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()


class RowEncoder:
    """Builds rows; remembers the statistics id of recent (snapshot, route) pairs, so that a
    snapshot shared by many requests is narrowed and encoded once."""

    def __init__(self) -> None:
        self._ids: dict[tuple[int, str, str, str], tuple[StatsSnapshot, str, str]] = {}

    def row(self, r: RequestRecord, stats: dict[str, str]) -> tuple[Any, ...]:
        """One ``requests`` row in ``REQUEST_COLUMNS`` order; the statistics it refers to are
        added to ``stats`` (id -> text) for the ``planner_stats`` table. Written for speed:
        this runs for every record, on the core the gateway serves from."""
        pi = r.planner_input
        decision: Any = r.decision
        if isinstance(decision, DecisionView):  # as arrays, like the planner input's below
            decision = decision.decision
        features = None
        if pi is not None:
            ctx, d, snapshot = pi.context, pi.decision, pi.snapshot
            sid = None
            if d is not None:  # else no route was found, and no statistics were read
                decision = d  # as arrays (orjson's default, below): no messages, no keys
                # The candidates, and so what was read, follow from the route and the policy.
                key = (id(snapshot), d[0], d[1], d[3])  # route, strategy, policy hash
                hit = self._ids.get(key)
                if hit is None or hit[0] is not snapshot:
                    hit = self._remember(key, pi)
                sid = hit[1]
                stats[sid] = hit[2]
            lim: tuple[Any, ...] = ctx[9]
            if lim is not NO_LIMITS and not (_ok(lim[0]) and _ok(lim[1]) and _ok(lim[2])):
                lim = tuple(_spelled(x) for x in lim)
            # FEATURE_FIELDS: requested, prompt and output tokens, the four flags, limits, stats
            features = (ctx[0], ctx[3], ctx[4], ctx[5], ctx[6], ctx[7], ctx[8], *lim, sid)
            if ctx.needs_responses:  # only when set, before the stats id (which stays last)
                features = (*features[:-1], True, sid)
        values = (
            r.task, r.selected_by, r.endpoint, r.streamed, r.http_status, r.failure, r.error,
            r.final_fingerprint, r.policy_version, r.client_key_id, r.confidence,
            r.escalations, _usage(r.usage), r.price_unknown, r.ttft_ms, r.metadata, r.prompt,
            r.answer, [_attempt(a) for a in r.attempts], decision, features, r.arm,
            r.cache_hit, r.cache_saved_usd, r.session, r.cache_similarity, r.cache_embed_ms,
        )  # fmt: skip
        if not _floats_finite(r):
            values = _spell_record(values)
        try:
            body = orjson.dumps(values, default=_ARRAY, option=orjson.OPT_NON_STR_KEYS)
        except TypeError:  # something other than a named tuple to turn into an array
            body = orjson.dumps(values, default=list, option=orjson.OPT_NON_STR_KEYS)
        return (
            r.request_id, r.started_at, r.route, r.final_model, r.final_reported_model,
            r.status, r.latency_ms, r.cost_usd, r.policy_hash, *derived(r), *drift_columns(r),
            body.decode(),
        )  # fmt: skip

    def _remember(
        self, key: tuple[int, str, str, str], pi: PlannerInput
    ) -> tuple[StatsSnapshot, str, str]:
        text = stats_json(pi.stats)
        hit = (pi.snapshot, stats_id(text), text)
        if len(self._ids) >= _STATS_CACHE:
            self._ids.clear()
        self._ids[key] = hit
        return hit


def _spell_record(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """The slow path for a record with a non-finite float at the top or in an attempt."""
    out = list(values)
    for name in _BODY_FLOATS:
        i = BODY_FIELDS.index(name)
        out[i] = _spelled(out[i])
    attempts = BODY_FIELDS.index("attempts")
    floats = [ATTEMPT_FIELDS.index(n) for n in _ATTEMPT_FLOATS]
    out[attempts] = [
        tuple(_spelled(x) if i in floats else x for i, x in enumerate(a)) for a in out[attempts]
    ]
    return tuple(out)


# --- reading -------------------------------------------------------------------------------


def _float(x: Any) -> Any:
    return float(x) if isinstance(x, str) else x


def body(row: Mapping[str, Any] | Any) -> dict[str, Any]:
    """The body of a row as a dict of ``BODY_FIELDS`` (missing trailing fields are None)."""
    raw = row["body"]
    values = orjson.loads(raw) if isinstance(raw, str | bytes) else raw
    data = dict(zip(BODY_FIELDS, values, strict=False))
    for name in BODY_FIELDS[len(values) :]:
        data[name] = None
    return data


def _usage_dict(values: list[int] | None) -> dict[str, int] | None:
    return None if values is None else dict(zip(USAGE_FIELDS, values, strict=True))


def attempt_dict(values: list[Any]) -> dict[str, Any]:
    """A stored attempt in the shape of ``Attempt.to_dict()``."""
    data = dict(zip(ATTEMPT_FIELDS, values, strict=True))
    for name in _ATTEMPT_FLOATS:
        data[name] = _float(data[name])
    data["usage"] = _usage_dict(data["usage"])
    return data


def decision_dict(stored: Any) -> dict[str, Any] | None:
    """A stored decision in the shape of ``Decision.to_dict()`` (or the dict as stored)."""
    if not isinstance(stored, list):
        return stored  # type: ignore[no-any-return]
    return decision_from(stored).to_dict()


def decision_from(v: list[Any]) -> Decision:
    tiers = tuple(tuple(_candidate(c) for c in tier) for tier in v[5])
    decision = Decision(
        v[0], v[1], v[2], v[3], v[4], tiers, tuple(_rejection(r) for r in v[6]), v[7], v[8],
        _float(v[9]), _float(v[10]), _float(v[11]), v[12], tuple(v[13]),
        _learned(v[14]) if len(v) > 14 and v[14] is not None else None,
    )  # fmt: skip
    if len(v) > 15 and v[15] is not None:  # session affinity, appended later
        decision = decision._replace(affinity=affinity_from(v[15]))
    return decision


def _learned(v: list[Any]) -> Learned:
    """A learned route's predicted scores; its rule and lambda came later (a body written
    before them reads as the threshold rule)."""
    scores = tuple((str(m), float(s)) for m, s in v[4])
    rule = v[5] if len(v) > 5 else "threshold"
    lam = _float(v[6]) if len(v) > 6 else None
    return Learned(v[0], v[1], float(v[2]), v[3], scores, rule, lam)


def _candidate(v: list[Any]) -> Candidate:
    e = v[1]
    # quality_samples (e[5]) came later: a body written before it reads as 0 rated requests;
    # then the interval, sources and version (e[6:10]): one written before reads as None.
    rated = e[5] if len(e) > 5 else 0
    measured = (_float(e[6]), _float(e[7]), e[8], e[9]) if len(e) > 9 else ()
    estimate = Estimate(_float(e[0]), _float(e[1]), e[2], _float(e[3]), e[4], rated, *measured)
    return Candidate(v[0], estimate, v[2], tuple(_rejection(r) for r in v[3]))


def affinity_from(v: list[Any]) -> Affinity:
    return Affinity(*v[: len(Affinity._fields)])


_UNNUMBERED = frozenset({Reason.CIRCUIT_OPEN, Reason.MISSING_CAPABILITY})


def _rejection(v: list[Any]) -> Rejection:
    reason, value, limit = Reason(v[1]), _float(v[2]), _float(v[3])
    if reason not in _UNNUMBERED:  # its message prints numbers; null was a non-finite one
        limit = _NAN if limit is None else limit
        if reason is not Reason.QUALITY_UNKNOWN:
            value = _NAN if value is None else value
    return Rejection(v[0], reason, value, limit, v[4])


_TEXT_FIGURES = frozenset({"quality_sources", "quality_version"})


def stats_from(text: str | bytes | Mapping[str, Any]) -> StatsSnapshot:
    data = orjson.loads(text) if isinstance(text, str | bytes) else dict(text)
    for group in (data.get("models") or {}, *(data.get("routes") or {}).values()):
        for figures in group.values():
            for name, value in figures.items():
                if name not in _TEXT_FIGURES:
                    figures[name] = _float(value)
    return StatsSnapshot.from_dict(data)


def planner_input_from(
    features: list[Any],
    task: str | None,
    metadata: Mapping[str, str],
    stats: StatsSnapshot,
    pin: str | None = None,
) -> PlannerInput:
    """``pin``: the session's pinned model the planner was given (kept on the decision's
    affinity, not among the features)."""
    needs_responses = len(features) > len(FEATURE_FIELDS)  # the flag, before the stats id
    if needs_responses:
        features = [*features[: len(FEATURE_FIELDS) - 1], features[-1]]
    named = dict(zip(FEATURE_FIELDS, features, strict=True))
    named["needs_responses"] = needs_responses
    named["limits"] = {k: _float(named[k]) for k in _LIMITS}
    named["pin"] = pin
    return PlannerInput.narrowed(context_from(named, task, metadata), stats)


def stats_ids(rows: Iterable[Any]) -> set[str]:
    """The statistics ids the rows refer to (for fetching them in one query)."""
    found = set()
    for row in rows:
        features = body(row)["planner_input"]
        if features is not None and features[-1] is not None:
            found.add(features[-1])
    return found


def request_dict(row: Any, stats: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A row in the shape of ``RequestRecord.to_dict()``; ``stats``: id -> stored statistics
    (text or parsed), for the planner's input."""
    data = {k: row[k] for k in V5_COLUMNS if k not in _NOT_FIELDS}
    b = body(row)
    for name in _BODY_FLOATS:
        b[name] = _float(b[name])
    b["usage"] = _usage_dict(b["usage"])
    b["metadata"] = b["metadata"] or {}
    b["attempts"] = [attempt_dict(a) for a in b["attempts"] or ()]
    b["decision"] = decision_dict(b["decision"])
    features = b.pop("planner_input")
    data.update(b)
    data["planner_input"] = None
    if features is not None:
        sid = features[-1]
        if sid is None:  # no route was found: no statistics were read
            snapshot = StatsSnapshot()
        elif stats is not None and sid in stats:
            snapshot = stats_from(stats[sid])
        else:  # written in the same transaction as the row: only a hand-made gap gets here
            return data
        affinity = (data["decision"] or {}).get("affinity") or {}
        data["planner_input"] = planner_input_from(
            features, data["task"], data["metadata"], snapshot, affinity.get("pinned")
        ).to_dict()
    return data


def listing_dict(row: Any) -> dict[str, Any]:
    """A row for a listing: the record without attempts or planner input, plus
    ``attempt_count``."""
    data = {k: row[k] for k in V5_COLUMNS if k not in _NOT_FIELDS}
    b = body(row)
    attempts = b.pop("attempts") or ()
    b.pop("planner_input")
    for name in _BODY_FLOATS:
        b[name] = _float(b[name])
    b["usage"] = _usage_dict(b["usage"])
    b["metadata"] = b["metadata"] or {}
    b["decision"] = decision_dict(b["decision"])
    data.update(b)
    data["attempt_count"] = sum(1 for a in attempts if a[7] != "skipped")
    return data


def derived_from_row(row: Any) -> tuple[Any, ...]:
    """The ``DERIVED_COLUMNS`` of a stored row (for rows stored before version 7)."""
    b = body(row)
    return (
        task_key(b["task"], b["prompt"]),
        decision_reason(decision_dict(b["decision"]), row["final_model"], b["escalations"] or 0),
        *usage_columns(b["usage"]),
    )
