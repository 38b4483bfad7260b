"""A synthetic record store at scale: N request records (default 10 million) with outcomes,
written into SQLite (a file path) or PostgreSQL (a URL), for the audit and drift benchmarks.

    python bench/synth_store.py /tmp/synth.db --records 10000000 --policy-out /tmp/synth.yaml
    python bench/synth_store.py postgresql://postgres@127.0.0.1:5432/synth_10m --records 10000000

The traffic (``synth_scenarios.py``): six routes and a default, several models per route with
prices, labelled and unlabelled prompts drawn from a few dozen templates, a cascade with
escalations, fallbacks and failures, an incident with an open circuit, a provider-reported
version switch of one model part way, and outcomes (shadow comparisons, evaluation runs,
feedback). ``--policy-out`` writes the policy the records were planned under (an audit or a
replay reads it).

The records are what the live writer stores. For every combination of template, epoch of
the planner's statistics, model version and request shape (answered, fell back, failed,
escalated), a prototype ``RequestRecord`` is built the way ``RecordBuilder`` builds one: the
request body goes through ``features.request_context``, the real planner decides under the
policy, the attempts follow that decision. Each prototype is encoded once by the stores' own
``RowEncoder`` (so every column, the body layout and the planner statistics are production's),
with sentinel values where requests differ (id, time, latencies, token counts, costs, prompt,
answer); the per-request values are drawn in vectorised chunks with numpy and substituted into
the encoded text. Costs are the policy's prices times the drawn token counts. Each record's
planner input is its template's (one representative prompt per template), so replaying a
record under the policy reproduces its decision.

Loading: the store's own ``open`` creates the schema (every migration), then the secondary
indexes of ``requests`` are dropped, rows go in by large transactions (SQLite: one
``executemany`` per chunk, journal off during the load; PostgreSQL: ``COPY`` in text format
per chunk, generation of the next chunk overlapping the copy), and the indexes are created
again with their own definitions. Outcomes go through ``Store.add_outcomes``.

Time here (2 shared vCPUs with other jobs running, load average ~7): generating costs ~11 us
of CPU per record; 300,000 records went into SQLite in 28 s of wall time and 20,000 into
PostgreSQL in 7 s. A record takes ~1.5 KB on disk in either store (10M: ~15-17 GB). The 10M
figures are in bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import re
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth_scenarios import (
    DOMAINS,
    EPOCHS,
    EVAL_PROMPTS,
    EVALS,
    FEEDBACK_QUALITY,
    FEEDBACK_SHARE,
    FINGERPRINTS,
    FIRST,
    INCIDENT,
    LAST,
    POLICY,
    REFUNDS,
    REPORTED,
    REVIEWS,
    SENTENCES,
    SHADOWS,
    SUBJECTS,
    TICKETS,
    VERSION_SWITCH_AT,
    Scenario,
    scenarios,
)

from modelroute.features import request_context
from modelroute.outcomes import Outcome, OutcomeSource, prompt_hash
from modelroute.planner import Decision, ModelStats, StatsSnapshot, plan
from modelroute.policy import Policy, load_policy
from modelroute.recording import _prompt_text
from modelroute.records.planner_input import PlannerInput
from modelroute.records.record import (
    Attempt,
    AttemptResult,
    RequestRecord,
    RequestStatus,
)
from modelroute.records.stores import open_store
from modelroute.records.stores.body import BODY_FIELDS, REQUEST_COLUMNS, RowEncoder
from modelroute.records.task_key import task_key
from modelroute.types import Usage

DAY = 86_400.0
CHUNK = 100_000

# --- per-request fields --------------------------------------------------------------------

Draw = Callable[[np.random.Generator, int], list[str]]


def _ints(lo: int, hi: int) -> Draw:
    return lambda rng, n: [str(x) for x in rng.integers(lo, hi, n).tolist()]


def _pick(pool: tuple[str, ...]) -> Draw:
    return lambda rng, n: [pool[i] for i in rng.integers(0, len(pool), n).tolist()]


def _emails(rng: np.random.Generator, n: int) -> list[str]:
    f = rng.integers(0, len(FIRST), n).tolist()
    la = rng.integers(0, len(LAST), n).tolist()
    k = rng.integers(1, 999, n).tolist()
    d = rng.integers(0, len(DOMAINS), n).tolist()
    return [f"{FIRST[a]}.{LAST[b]}{c}@{DOMAINS[e]}" for a, b, c, e in zip(f, la, k, d, strict=True)]


def _dates(rng: np.random.Generator, n: int) -> list[str]:
    days = rng.integers(19_000, 20_500, n).astype("datetime64[D]")
    return np.datetime_as_string(days).tolist()


def _amounts(rng: np.random.Generator, n: int) -> list[str]:
    return [f"{x:,.2f}" for x in np.round(rng.lognormal(4.5, 1.0, n), 2).tolist()]


def _uuids(rng: np.random.Generator, n: int) -> list[str]:
    hi = rng.integers(0, 2**63, n).tolist()
    lo = rng.integers(0, 2**63, n).tolist()
    out = []
    for a, b in zip(hi, lo, strict=True):
        h = f"{a:016x}{b:016x}"
        out.append(f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}")
    return out


def _paragraphs(rng: np.random.Generator, n: int) -> list[str]:
    picks = rng.integers(0, len(SENTENCES), (n, 3)).tolist()
    return [" ".join(SENTENCES[i] for i in row) for row in picks]


def _fnames(rng: np.random.Generator, n: int) -> list[str]:
    verbs = ("parse", "dedupe", "retry", "check", "compute")
    nouns = ("items", "value", "request", "input", "numbers")
    v = rng.integers(0, len(verbs), n).tolist()
    w = rng.integers(0, len(nouns), n).tolist()
    k = rng.integers(1, 99, n).tolist()
    return [f"{verbs[a]}_{nouns[b]}_{c}" for a, b, c in zip(v, w, k, strict=True)]


FIELD_KINDS: dict[str, Draw] = {
    "int": _ints(2, 99_999),
    "few": _ints(2, 60),
    "stars": _ints(1, 6),
    "email": _emails,
    "date": _dates,
    "amount": _amounts,
    "uuid": _uuids,
    "order": lambda rng, n: [f"ORD-{x}" for x in rng.integers(10_000, 999_999, n).tolist()],
    "invoice": lambda rng, n: [f"INV-2024-{x:05d}" for x in rng.integers(1, 99_999, n).tolist()],
    "ticket": _pick(tuple(f"{t} (ref {i})" for i, t in enumerate(TICKETS))),
    "refund": _pick(REFUNDS),
    "review": _pick(REVIEWS),
    "paragraph": _paragraphs,
    "subject": _pick(SUBJECTS),
    "fname": _fnames,
}


@dataclass(frozen=True, slots=True)
class Template:
    """A scenario's user message as a positional format string and its fields' kinds."""

    text: str
    kinds: tuple[str, ...]

    @classmethod
    def of(cls, user: str) -> Template:
        kinds: list[str] = []
        out, i = [], 0
        while i < len(user):
            if user[i] == "{":
                end = user.index("}", i)
                kinds.append(user[i + 1 : end])
                out.append("{}")
                i = end + 1
            else:
                out.append(user[i])
                i += 1
        return cls("".join(out), tuple(kinds))

    def draw(self, rng: np.random.Generator, n: int) -> list[str]:
        columns = [FIELD_KINDS[k](rng, n) for k in self.kinds]
        fmt = self.text.format
        return (
            [fmt(*values) for values in zip(*columns, strict=True)] if columns else [self.text] * n
        )


# --- prototypes ----------------------------------------------------------------------------

# Sentinels: values no real record has, found again in the encoded row and body. Floats end in
# .5 and ints are 8 digits starting with 97, so neither is a substring of the other.
_FLOATS = ("STARTED", "LAT", "TTFT", "COST", "LAT1", "LAT2", "ST2", "TTFT1", "TTFT2", "COST1",
           "COST2", "CONF", "CONF1", "CONF2")  # fmt: skip
_INTS = ("IN", "OUT1", "OUT2", "TIN", "TOUT")
SENTINEL: dict[str, Any] = {name: 8_100_001.5 + 10 * i for i, name in enumerate(_FLOATS)}
SENTINEL |= {name: 97_000_001 + i for i, name in enumerate(_INTS)}
_STRINGS = ("RID", "PROMPT", "ANSWER", "TENANT")
SENTINEL |= {name: f"\u0001{name}\u0002" for name in _STRINGS}
SHAPES = ("ok", "fallback", "failed", "escalated")


@dataclass(slots=True)
class Prototype:
    scenario: int
    shape: str
    columns: tuple[Any, ...]  # a constant, or a sentinel name (str) to fill per row
    per_row: tuple[bool, ...]
    body: str  # %-format text with %(NAME)s fields
    record: RequestRecord  # for outcomes: the route, task, final model and version
    answered_by: list[str]  # models of answered attempts, in order (for costs)


def _attempt(policy: Policy, name: str, tier: int, **kw: Any) -> Attempt:
    model = policy.models[name]
    return Attempt(model=name, provider=model.provider, model_id=model.model_id, tier=tier,
                   started_ms=0.0, **kw)  # fmt: skip


def _answered(policy: Policy, name: str, tier: int, n: int, version: int, **kw: Any) -> Attempt:
    """An answered attempt; ``n`` (1 or 2) picks its sentinels."""
    versions, prints = REPORTED[name], FINGERPRINTS[name]
    return _attempt(
        policy, name, tier, latency_ms=SENTINEL[f"LAT{n}"], reported_model=versions[
            min(version, len(versions) - 1)], fingerprint=prints[min(version, len(prints) - 1)],
        usage=Usage(SENTINEL["IN"], SENTINEL[f"OUT{n}"]), cost_usd=SENTINEL[f"COST{n}"], **kw,
    )  # fmt: skip


def _attempts(
    policy: Policy, decision: Decision, shape: str, version: int, streamed: bool
) -> tuple[list[Attempt], RequestStatus] | None:
    """The attempts of one request shape under ``decision``; None when the shape cannot
    happen there (an escalation outside a cascade, a fallback with one model)."""
    order = [c.model for tier in decision.tiers for c in tier]
    tiers = [t for t, tier in enumerate(decision.tiers) for _ in tier]
    cascade = decision.strategy == "cascade"
    ttft = {"ttft_ms": SENTINEL["TTFT1"]} if streamed else {}
    if shape == "ok":
        conf = {"confidence": SENTINEL["CONF1"]} if cascade else {}
        return [_answered(policy, order[0], tiers[0], 1, version, **ttft, **conf)], "ok"
    if shape == "escalated":
        if not cascade or len(decision.tiers) < 2:
            return None
        low = _answered(policy, order[0], 0, 1, version, confidence=SENTINEL["CONF1"],
                        outcome=AttemptResult.LOW_CONFIDENCE)  # fmt: skip
        top = decision.tiers[1][0].model
        high = _answered(policy, top, 1, 2, version, confidence=SENTINEL["CONF2"])
        high.started_ms = SENTINEL["ST2"]
        return [low, high], "ok"
    if cascade:
        return None
    if shape == "fallback":
        second = order[1] if len(order) > 1 else order[0]
        failed = _attempt(policy, order[0], tiers[0], latency_ms=SENTINEL["LAT1"],
                          outcome=AttemptResult.FAILED, failure="rate_limited", status=429,
                          message="rate limit reached", retry_after_s=1.0)  # fmt: skip
        ok = _answered(policy, second, tiers[1] if len(order) > 1 else tiers[0], 2, version,
                       **({"ttft_ms": SENTINEL["TTFT2"]} if streamed else {}))  # fmt: skip
        ok.started_ms = SENTINEL["ST2"]
        return [failed, ok], "ok"
    timeouts = [
        _attempt(policy, m, t, latency_ms=SENTINEL[f"LAT{i + 1}"], outcome=AttemptResult.FAILED,
                 failure="timeout", message="attempt deadline exceeded")
        for i, (m, t) in enumerate(list(zip(order, tiers, strict=True))[:2])
    ]  # fmt: skip
    if len(timeouts) == 2:
        timeouts[1].started_ms = SENTINEL["ST2"]
    return timeouts, "failed"


def _record(
    policy: Policy, sc: Scenario, body: dict[str, Any], headers: dict[str, str],
    stats: StatsSnapshot, shape: str, version: int, prompt: str,
) -> tuple[RequestRecord, list[str]] | None:  # fmt: skip
    ctx = request_context(body, headers)
    decision = plan(ctx, policy, stats)
    made = _attempts(policy, decision, shape, version, sc.streamed)
    if made is None:
        return None
    attempts, status = made
    answered = [a for a in attempts if a.usage is not None]
    r = RequestRecord(
        request_id=SENTINEL["RID"], started_at=SENTINEL["STARTED"], route=decision.route,
        task=ctx.task, selected_by=decision.selected_by, metadata=dict(ctx.metadata),
        policy_hash=policy.hash, policy_version=policy.version, streamed=sc.streamed,
        decision=decision.to_dict(), attempts=attempts, latency_ms=SENTINEL["LAT"],
        prompt=prompt, planner_input=PlannerInput(ctx, stats, decision),
        escalations=1 if shape == "escalated" else 0,
    )  # fmt: skip
    if status == "ok":
        last = answered[-1]
        r.final_model, r.final_reported_model = last.model, last.reported_model
        r.final_fingerprint, r.answer = last.fingerprint, SENTINEL["ANSWER"]
        r.usage = Usage(SENTINEL["TIN"], SENTINEL["TOUT"])
        r.cost_usd = SENTINEL["COST"]
        r.ttft_ms = SENTINEL["TTFT"]
        if decision.strategy == "cascade":
            r.confidence = SENTINEL["CONF"]
    else:
        r.status, r.failure, r.http_status = RequestStatus.FAILED, "timeout", 504
        r.error = "timeout: every attempt exceeded its deadline"
    return r, [a.model for a in answered]


def _stats(
    policy: Policy, rng: np.random.Generator, open_circuits: frozenset[str]
) -> StatsSnapshot:
    """One epoch's rolling statistics: measured latencies and error rates per route and model
    (quality stays the policy's prior: too few rated requests per route)."""
    by_route = {}
    for route in policy.routes.values():
        for entry in route.entries:
            m = entry.model
            scale = float(rng.uniform(0.85, 1.2))
            by_route[(route.name, m.name)] = ModelStats(
                latency_p50_ms=round(m.latency_p50_ms * scale, 1),
                latency_p95_ms=round(m.latency_p95_ms * scale, 1),
                error_rate=round(float(rng.uniform(0.001, 0.02)), 4),
                samples=int(rng.integers(200, 5000)),
            )
    return StatsSnapshot(by_route, {}, open_circuits)


def _template(
    columns: tuple[Any, ...], prompt: str
) -> tuple[tuple[Any, ...], tuple[bool, ...], str]:
    """The row of a prototype: which columns vary per request, and its body as %-format (the
    representative ``prompt`` becomes the PROMPT field)."""
    body_at = REQUEST_COLUMNS.index("body")
    by_value = {repr(v): k for k, v in SENTINEL.items() if not isinstance(v, str)}
    out, per_row = [], []
    for i, value in enumerate(columns):
        name = by_value.get(repr(value)) if isinstance(value, float | int) else None
        if isinstance(value, str) and value in SENTINEL.values():
            name = next(k for k, v in SENTINEL.items() if v == value)
        out.append(name if name is not None else value)
        per_row.append(name is not None or i == body_at)
    text = columns[body_at].replace("%", "%%")
    text = text.replace(orjson.dumps(prompt).decode().replace("%", "%%"), "%(PROMPT)s")
    for name, value in sorted(SENTINEL.items(), key=lambda kv: -len(str(kv[1]))):
        token = orjson.dumps(value).decode()
        text = text.replace(token.replace("%", "%%"), f"%({name})s")
    return tuple(out), tuple(per_row), text


def prototypes(policy: Policy, scs: list[Scenario], seed: int) -> tuple[
    list[Prototype], dict[str, str], np.ndarray
]:  # fmt: skip
    """Every prototype; the planner statistics they refer to; and a lookup table
    [scenario, epoch (the last one is the incident), version, shape] -> prototype (-1: none)."""
    rng = np.random.default_rng(seed)
    epochs = [_stats(policy, rng, frozenset()) for _ in range(EPOCHS)]
    epochs.append(_stats(policy, rng, frozenset({"haiku"})))
    encoder, stats_rows = RowEncoder(), {}
    table = np.full((len(scs), len(epochs), 2, len(SHAPES)), -1, dtype=np.int32)
    out: list[Prototype] = []
    for s, sc in enumerate(scs):
        messages = _messages(sc, Template.of(sc.user).draw(rng, 1)[0])
        prompt = _prompt_text({"messages": messages})
        body = {"model": sc.requested, "messages": messages,
                "metadata": {**sc.metadata, "tenant": SENTINEL["TENANT"]}}  # fmt: skip
        headers = {"x-modelroute-task": sc.task} if sc.task else {}
        for e, stats in enumerate(epochs):
            for version in (0, 1):
                for h, shape in enumerate(SHAPES):
                    built = _record(policy, sc, body, headers, stats, shape, version, prompt)
                    if built is None:
                        continue
                    record, answered = built
                    row = encoder.row(record, stats_rows)
                    columns, per_row, text = _template(row, prompt)
                    table[s, e, version, h] = len(out)
                    out.append(Prototype(s, shape, columns, per_row, text, record, answered))
    return out, stats_rows, table


def _messages(sc: Scenario, user: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": sc.system}, {"role": "user", "content": user}]


# --- requests, a chunk at a time ----------------------------------------------------------


@dataclass(slots=True)
class Plan:
    """What every chunk needs: the prototypes, their positional body formats, per-scenario
    constants, the time span."""

    policy: Policy
    scs: list[Scenario]
    protos: list[Prototype]
    formats: list[tuple[str, tuple[str, ...]]]  # positional body text, its field names
    table: np.ndarray
    total: int
    t0: float
    span: float
    seed: int
    stats_rows: dict[str, str]  # planner statistics id -> text, for planner_stats

    @classmethod
    def make(cls, policy: Policy, total: int, days: float, seed: int, end: float) -> Plan:
        scs = scenarios()
        protos, stats_rows, table = prototypes(policy, scs, seed)
        formats = []
        for p in protos:
            names: list[str] = []

            def field(m: Any, names: list[str] = names) -> str:
                names.append(m.group(1))
                return "%s"

            text = re.sub(r"%\(([A-Z0-9]+)\)s", field, p.body)
            formats.append((text, tuple(names)))
        t0 = end - days * DAY
        return cls(policy, scs, protos, formats, table, total, t0, days * DAY, seed, stats_rows)


@dataclass(slots=True)
class Chunk:
    rows: list[tuple[Any, ...]]
    outcomes: list[Outcome]


def _uuid7s(ms: list[int], rng: np.random.Generator) -> list[str]:
    ra = rng.integers(0, 1 << 12, len(ms)).tolist()
    rb = rng.integers(0, 1 << 62, len(ms)).tolist()
    out = []
    for m, a, b in zip(ms, ra, rb, strict=True):
        h = f"{(m << 80) | (0x7 << 76) | (a << 64) | (0b10 << 62) | b:032x}"
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return out


def _prices(policy: Policy, names: list[str]) -> tuple[np.ndarray, np.ndarray]:
    inp = np.array([policy.models[m].prices.input for m in names]) / 1e6
    out = np.array([policy.models[m].prices.output for m in names]) / 1e6
    return inp, out


def chunk(plan: Plan, start: int, n: int) -> Chunk:
    """Requests ``start`` to ``start + n`` (in time order) as rows, and their outcomes."""
    rng = np.random.default_rng([plan.seed, start])
    scs = plan.scs
    t = plan.t0 + (np.arange(start, start + n) + rng.random(n)) / plan.total * plan.span
    frac = (t - plan.t0) / plan.span
    weights = np.array([s.weight for s in scs])
    s = rng.choice(len(scs), n, p=weights / weights.sum())
    epoch = np.minimum((frac * EPOCHS).astype(np.int64), EPOCHS - 1)
    epoch[(frac >= INCIDENT[0]) & (frac < INCIDENT[1])] = EPOCHS
    version = (frac >= VERSION_SWITCH_AT).astype(np.int64)
    u = rng.random(n)
    cascade = np.array(
        [plan.table[i, 0, 0, SHAPES.index("escalated")] >= 0 for i in range(len(scs))]
    )
    shape = np.where(u < 0.004, 2, np.where(u < 0.014, 1, 0))
    shape = np.where(cascade[s], np.where(u < 0.2, 3, 0), shape)
    p = plan.table[s, epoch, version, shape]
    p = np.where(p < 0, plan.table[s, epoch, version, 0], p)
    values = _numbers(plan, rng, t, s, p)
    values["RID"] = np.array(_uuid7s((t * 1000).astype(np.int64).tolist(), rng), dtype=object)
    users = np.empty(n, dtype=object)
    for i in np.unique(s).tolist():
        at = np.flatnonzero(s == i)
        users[at] = Template.of(scs[i].user).draw(rng, len(at))
    values["USER"] = users
    rows = _rows(plan, rng, p, values)
    outcomes = _live_outcomes(plan, rng, t, s, p, values)
    return Chunk(rows, outcomes)


def _numbers(
    plan: Plan, rng: np.random.Generator, t: np.ndarray, s: np.ndarray, p: np.ndarray
) -> dict[str, np.ndarray]:
    """Token counts, latencies, costs and confidences of each request, by its prototype."""
    n, protos, policy = len(t), plan.protos, plan.policy
    base_in = np.array([pr.record.planner_input.context.prompt_tokens for pr in protos])  # type: ignore[union-attr]
    out_median = np.array([plan.scs[pr.scenario].output_tokens for pr in protos])
    first = [pr.record.attempts[0].model for pr in protos]
    second = [pr.record.attempts[-1].model for pr in protos]
    p50 = np.array([policy.models[m].latency_p50_ms for m in first])[p]
    p50b = np.array([policy.models[m].latency_p50_ms for m in second])[p]
    shape = np.array([SHAPES.index(pr.shape) for pr in protos])[p]
    tin = np.maximum(5, np.rint(base_in[p] * rng.lognormal(0, 0.08, n))).astype(np.int64)
    out1 = np.maximum(1, np.rint(out_median[p] * rng.lognormal(0, 0.4, n))).astype(np.int64)
    out2 = np.maximum(1, np.rint(out_median[p] * rng.lognormal(0, 0.4, n))).astype(np.int64)
    lat1 = p50 * rng.lognormal(0, 0.35, n) * (1 + out1 / 400)
    lat2 = p50b * rng.lognormal(0, 0.35, n) * (1 + out2 / 400)
    lat1 = np.where(shape == 1, rng.uniform(40, 120, n), lat1)  # rate limited at once
    lat1 = np.where(shape == 2, 30_000 + rng.uniform(0, 20, n), lat1)  # attempt deadline
    lat2 = np.where(shape == 2, 30_000 + rng.uniform(0, 20, n), lat2)
    st2 = lat1 + rng.uniform(1, 6, n)
    two = np.array([len(pr.record.attempts) == 2 for pr in protos])[p]
    lat = np.where(two, st2 + lat2, lat1) + rng.uniform(0.3, 2.0, n)
    in1, o1 = _prices(policy, first)
    in2, o2 = _prices(policy, second)
    cost1 = tin * in1[p] + out1 * o1[p]
    cost2 = tin * in2[p] + out2 * o2[p]
    ttft1, ttft2 = lat1 * rng.uniform(0.15, 0.3, n), lat2 * rng.uniform(0.15, 0.3, n)
    escalated, fallback = shape == 3, shape == 1
    conf1 = np.where(escalated, rng.uniform(0.2, 0.7, n), rng.uniform(0.7, 1.0, n))
    conf2 = rng.uniform(0.6, 1.0, n)
    streamed = np.array([plan.scs[pr.scenario].streamed for pr in protos])[p]
    ttft = np.where(streamed, np.where(two, st2 + ttft2, ttft1), lat)
    r3 = lambda a: np.round(a, 3)  # noqa: E731
    return {
        "STARTED": t, "LAT": r3(lat), "LAT1": r3(lat1), "LAT2": r3(lat2), "ST2": r3(st2),
        "TTFT": r3(ttft), "TTFT1": r3(ttft1), "TTFT2": r3(ttft2),
        "COST1": cost1, "COST2": cost2,
        "COST": np.where(escalated, cost1 + cost2, np.where(fallback, cost2, cost1)),
        "CONF1": np.round(conf1, 4), "CONF2": np.round(conf2, 4),
        "CONF": np.round(np.where(escalated, conf2, conf1), 4),
        "IN": tin, "OUT1": out1, "OUT2": out2,
        "TIN": np.where(escalated, 2 * tin, tin),
        "TOUT": np.where(escalated, out1 + out2, np.where(fallback, out2, out1)),
    }  # fmt: skip


def _strings(plan: Plan, rng: np.random.Generator, p: np.ndarray, values: dict[str, Any]) -> None:
    """The JSON texts of each request's prompt, answer and tenant."""
    n = len(p)
    sc_of = np.array([pr.scenario for pr in plan.protos])[p]
    prompts = np.empty(n, dtype=object)
    answers = np.empty(n, dtype=object)
    dumps = orjson.dumps
    for i in np.unique(sc_of).tolist():
        sc = plan.scs[i]
        at = np.flatnonzero(sc_of == i)
        head = f"system: {sc.system}\nuser: "
        prompts[at] = [dumps(head + u).decode() for u in values["USER"][at].tolist()]
        pool = [dumps(a).decode() for a in sc.answers]
        answers[at] = [pool[k] for k in rng.integers(0, len(pool), len(at)).tolist()]
    values["PROMPT"], values["ANSWER"] = prompts, answers
    tenants = [f'"t{k}"' for k in range(40)]
    values["TENANT"] = np.array(tenants, dtype=object)[rng.integers(0, 40, n)]


def _rows(
    plan: Plan, rng: np.random.Generator, p: np.ndarray, values: dict[str, Any]
) -> list[tuple[Any, ...]]:
    _strings(plan, rng, p, values)
    out: list[Any] = [None] * len(p)
    body_at = REQUEST_COLUMNS.index("body")
    for k in np.unique(p).tolist():
        at = np.flatnonzero(p == k)
        proto = plan.protos[k]
        fmt, names = plan.formats[k]
        fields = [values[name][at].tolist() for name in names]
        bodies = [fmt % v for v in zip(*fields, strict=True)] if fields else [fmt] * len(at)
        columns = []
        for i, (value, varies) in enumerate(zip(proto.columns, proto.per_row, strict=True)):
            if i == body_at:
                columns.append(bodies)
            elif varies:
                columns.append(values[value][at].tolist())
            else:
                columns.append([value] * len(at))
        for j, row in zip(at.tolist(), zip(*columns, strict=True), strict=True):
            out[j] = row
    return out


def _score(rng: np.random.Generator, quality: float, grader: str, n: int) -> list[float]:
    if grader == "agreement" or grader == "thumbs" or grader == "exact":
        return (rng.random(n) < quality).astype(float).tolist()
    k = 12.0  # a judge's graded verdicts, spread around the model's quality
    return np.round(rng.beta(quality * k, (1 - quality) * k, n), 2).tolist()


def _live_outcomes(
    plan: Plan, rng: np.random.Generator, t: np.ndarray, s: np.ndarray, p: np.ndarray,
    values: dict[str, Any],
) -> list[Outcome]:  # fmt: skip
    """Shadow comparisons and feedback on this chunk's successful requests."""
    ok = np.array([pr.record.status == RequestStatus.OK for pr in plan.protos])[p]
    index = {sc.name: i for i, sc in enumerate(plan.scs)}
    out: list[Outcome] = []
    for rule in SHADOWS:
        at = np.flatnonzero((s == index[rule.scenario]) & ok & (rng.random(len(s)) < rule.sample))
        scores = _score(rng, rule.quality, rule.grader, len(at))
        version = REPORTED[rule.model][0]
        for j, score in zip(at.tolist(), scores, strict=True):
            record = plan.protos[p[j]].record
            sc = plan.scs[s[j]]
            out.append(
                Outcome(
                    source=OutcomeSource.SHADOW, grader=rule.grader, score=score,
                    model=rule.model, created_at=float(t[j]) + 5.0, prompt_id=values["RID"][j],
                    prompt_hash=prompt_hash(_messages(sc, values["USER"][j])), task=sc.task,
                    route=record.route, reported_model=version, request_id=values["RID"][j],
                    cost_usd=round(float(values["COST"][j]) / 8, 8), latency_ms=300.0,
                    detail={"baseline_model": record.final_model,
                            "baseline_version": record.final_reported_model},
                )
            )  # fmt: skip
    chat = np.array([plan.scs[i].name.startswith("chat-") for i in range(len(plan.scs))])
    at = np.flatnonzero(chat[s] & ok & (rng.random(len(s)) < FEEDBACK_SHARE))
    for j in at.tolist():
        record = plan.protos[p[j]].record
        model = str(record.final_model)
        score = float(rng.random() < FEEDBACK_QUALITY.get(model, 0.85))
        out.append(
            Outcome(
                source=OutcomeSource.FEEDBACK, grader="thumbs", score=score, model=model,
                created_at=float(t[j]) + 60.0, prompt_id=values["RID"][j], route=record.route,
                reported_model=record.final_reported_model, request_id=values["RID"][j],
            )
        )  # fmt: skip
    return out


def eval_outcomes(plan: Plan) -> list[Outcome]:
    """Weekly evaluation runs of ``EVAL_PROMPTS`` prompts per evaluated (route, model)."""
    rng = np.random.default_rng([plan.seed, 7])
    out = []
    weeks = max(1, int(plan.span // (7 * DAY)))
    task_of = {"classify": "sentiment"}
    for week in range(weeks):
        at = plan.t0 + (week + 0.5) * 7 * DAY
        version = int((at - plan.t0) / plan.span >= VERSION_SWITCH_AT)
        for (route, model), qualities in EVALS.items():
            quality = qualities[min(version, len(qualities) - 1)]
            reported = REPORTED[model][min(version, len(REPORTED[model]) - 1)]
            for k, score in enumerate(_score(rng, quality, "exact", EVAL_PROMPTS)):
                out.append(
                    Outcome(
                        source=OutcomeSource.EVAL, grader="exact", score=score, model=model,
                        created_at=at + k, prompt_id=f"{route}-eval-{k}", task=task_of.get(route),
                        route=route, reported_model=reported, run=f"{route}-weekly-{week}",
                    )
                )  # fmt: skip
    return out


def check_keys(rows: list[tuple[Any, ...]], sample: int = 500) -> None:
    """Each row's task key (taken from its template's prototype) is the one the store would
    compute from the row's own prompt: the masks cover every value the templates vary."""
    if "task_key" not in REQUEST_COLUMNS:
        return
    at, body_at = REQUEST_COLUMNS.index("task_key"), REQUEST_COLUMNS.index("body")
    fields = BODY_FIELDS.index("task"), BODY_FIELDS.index("prompt")
    for row in rows[:: max(1, len(rows) // sample)]:
        values = orjson.loads(row[body_at])
        expected = task_key(values[fields[0]], values[fields[1]])
        if row[at] != expected:
            raise AssertionError(f"task key {row[at]} != {expected} for {values[fields[1]]!r}")


def chunks(plan: Plan, size: int = CHUNK) -> Iterator[Chunk]:
    """The chunks in order, each made in a worker thread while the caller writes the one
    before (a queue of one: at most two chunks in memory)."""
    ready: queue.Queue[Chunk | BaseException | None] = queue.Queue(maxsize=1)

    def produce() -> None:
        try:
            for start in range(0, plan.total, size):
                made = chunk(plan, start, min(size, plan.total - start))
                if start == 0:
                    check_keys(made.rows)
                ready.put(made)
            ready.put(None)
        except BaseException as exc:  # handed to the consumer, raised there
            ready.put(exc)

    threading.Thread(target=produce, daemon=True).start()
    while (item := ready.get()) is not None:
        if isinstance(item, BaseException):
            raise item
        yield item


# --- writing -------------------------------------------------------------------------------


async def _migrated(url: str) -> int:
    """Open the store once (its migrations create every table); how many records it has."""
    store = open_store(url)
    await store.open()
    try:
        return await store.count()
    finally:
        await store.close()


async def _add_outcomes(url: str, outcomes: list[Outcome], batch: int = 50_000) -> int:
    store = open_store(url)
    await store.open()
    try:
        added = 0
        for i in range(0, len(outcomes), batch):
            added += await store.add_outcomes(outcomes[i : i + batch])
        return added
    finally:
        await store.close()


def write_sqlite(path: str, plan: Plan, progress: Callable[[int], None]) -> list[Outcome]:
    db = sqlite3.connect(path, isolation_level=None)
    indexes = db.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'requests' "
        "AND sql IS NOT NULL"
    ).fetchall()
    db.execute("PRAGMA journal_mode = OFF")  # a bulk load: rebuilt from scratch if it fails
    db.execute("PRAGMA synchronous = OFF")
    db.execute("PRAGMA cache_size = -1000000")
    for name, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    db.executemany(
        "INSERT INTO planner_stats VALUES (?, ?) ON CONFLICT DO NOTHING",
        plan.stats_rows.items(),
    )
    insert = (
        f"INSERT INTO requests ({', '.join(REQUEST_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(REQUEST_COLUMNS))})"
    )
    outcomes: list[Outcome] = []
    done = 0
    for part in chunks(plan):
        db.execute("BEGIN")
        db.executemany(insert, part.rows)
        db.execute("COMMIT")
        outcomes += part.outcomes
        done += len(part.rows)
        progress(done)
    for _, sql in indexes:
        db.execute(sql)
    db.execute("PRAGMA journal_mode = WAL")
    db.close()
    return outcomes


def _copy_text(rows: list[tuple[Any, ...]]) -> bytes:
    """Rows in COPY's text format: tab-separated, \\N for NULL, backslashes doubled (JSON and
    the other columns hold no raw tab or newline)."""
    lines = []
    for row in rows:
        fields = []
        for v in row:
            if v is None:
                fields.append("\\N")
            elif isinstance(v, str):
                fields.append(v.replace("\\", "\\\\"))
            elif isinstance(v, bool):
                fields.append("t" if v else "f")
            else:
                fields.append(repr(v) if isinstance(v, float) else str(v))
        lines.append("\t".join(fields))
    lines.append("")
    return "\n".join(lines).encode()


async def _ensure_database(url: str) -> None:
    import asyncpg

    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    admin = await asyncpg.connect(urlunsplit(parts._replace(path="/postgres")))
    try:
        if not await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()


async def write_postgres(url: str, plan: Plan, progress: Callable[[int], None]) -> list[Outcome]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        await conn.execute("SET synchronous_commit = off")
        await conn.execute("SET maintenance_work_mem = '512MB'")
        indexes = await conn.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
            "AND tablename = 'requests' AND indexname NOT IN "
            "(SELECT conname FROM pg_constraint)"
        )
        for row in indexes:
            await conn.execute(f'DROP INDEX "{row["indexname"]}"')
        await conn.executemany(
            "INSERT INTO planner_stats VALUES ($1, $2::jsonb) ON CONFLICT DO NOTHING",
            list(plan.stats_rows.items()),
        )
        outcomes: list[Outcome] = []
        done = 0
        pending: asyncio.Task[Any] | None = None
        it = chunks(plan)
        while True:
            part = await asyncio.to_thread(next, it, None)
            if part is None:
                break
            data = await asyncio.to_thread(_copy_text, part.rows)
            if pending is not None:
                await pending
            pending = asyncio.create_task(_copy(conn, data))
            outcomes += part.outcomes
            done += len(part.rows)
            progress(done)
        if pending is not None:
            await pending
        for row in indexes:
            await conn.execute(row["indexdef"])
        # what autovacuum does to an insert-only table: statistics, and the visibility map
        # that lets index-only scans skip the table
        await conn.execute("VACUUM ANALYZE requests")
    finally:
        await conn.close()
    return outcomes


async def _copy(conn: Any, data: bytes) -> None:
    import io

    await conn.copy_to_table(
        "requests", source=io.BytesIO(data), columns=list(REQUEST_COLUMNS), format="text"
    )


# --- the command ---------------------------------------------------------------------------


def _is_postgres(target: str) -> bool:
    return target.startswith(("postgresql://", "postgres://"))


def generate(
    target: str, records: int, days: float = 30.0, seed: int = 1, end: float | None = None,
    policy_out: str | None = None, quiet: bool = False,
) -> dict[str, Any]:  # fmt: skip
    """Fill ``target`` (an empty store: a SQLite path or a PostgreSQL URL) with ``records``
    synthetic records ending at ``end`` (default now) and their outcomes; returns timings."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(policy_out) if policy_out else Path(tmp) / "synthetic-policy.yaml"
        path.write_text(yaml.safe_dump(POLICY, sort_keys=False))
        policy = load_policy(path)
    started = time.perf_counter()
    if _is_postgres(target):
        asyncio.run(_ensure_database(target))
    existing = asyncio.run(_migrated(target))
    if existing:
        raise SystemExit(f"error: {target} already holds {existing} records; use an empty store")
    plan = Plan.make(policy, records, days, seed, time.time() if end is None else end)

    def progress(done: int) -> None:
        if not quiet:
            rate = done / (time.perf_counter() - started)
            print(f"\r{done:,} records ({rate:,.0f}/s)", end="", file=sys.stderr, flush=True)

    if _is_postgres(target):
        live = asyncio.run(write_postgres(target, plan, progress))
    else:
        live = write_sqlite(target, plan, progress)
    loaded = time.perf_counter()
    added = asyncio.run(_add_outcomes(target, [*live, *eval_outcomes(plan)]))
    finished = time.perf_counter()
    if not quiet:
        print(file=sys.stderr)
    return {
        "records": records, "outcomes": added, "policy_hash": policy.hash,
        "records_s": round(loaded - started, 1), "outcomes_s": round(finished - loaded, 1),
        "total_s": round(finished - started, 1), "from": plan.t0, "to": plan.t0 + plan.span,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("target", help="a SQLite path or a postgresql:// URL (created if new)")
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--days", type=float, default=30.0, help="the time span, ending now")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--policy-out", help="write the policy the records were planned under")
    args = parser.parse_args()
    result = generate(args.target, args.records, args.days, args.seed, None, args.policy_out)
    print(orjson.dumps(result).decode())


if __name__ == "__main__":
    main()
