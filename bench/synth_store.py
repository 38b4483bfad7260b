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

The records are what the live writer stores (the prototypes: ``synth_records.py``). For
every combination of template, epoch of the planner's statistics, model version and request
shape (answered, fell back, failed, escalated), a prototype ``RequestRecord`` is built the
way ``RecordBuilder`` builds one: the request body goes through
``features.request_context``, the real planner decides under the policy, the attempts follow
that decision. Each prototype is encoded once by the stores' own ``RowEncoder`` (so every
column, the body layout and the planner statistics are production's), with sentinel values
where requests differ (id, time, latencies, token counts, costs, prompt, answer); the per-
request values are drawn in vectorised chunks with numpy and substituted into the encoded
text. Costs are the policy's prices times the drawn token counts. Each record's planner
input is its template's (one representative prompt per template), so replaying a record
under the policy reproduces its decision.

Loading (``synth_load.py``): the store's own ``open`` creates the schema (every migration),
then the secondary indexes of ``requests`` are dropped, rows go in by large transactions
(SQLite: one ``executemany`` per chunk, journal off during the load; PostgreSQL: ``COPY`` in
text format per chunk, generation of the next chunk overlapping the copy), and the indexes
are created again with their own definitions. Outcomes go through ``Store.add_outcomes``.

Time here (2 shared vCPUs, other jobs running, load average 4-7): 10 million records took
797 s into SQLite (17.6 GB, peak RSS 2.3 GB) and 708-952 s into PostgreSQL (25 GB, peak RSS
1.9 GB), about half of it rebuilding the indexes; generating costs ~11 us of CPU per record. See
bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import queue
import re
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth_load import _add_outcomes, _ensure_database, _migrated, write_postgres, write_sqlite
from synth_records import SHAPES, Prototype, Template, _messages, prototypes
from synth_scenarios import (
    EPOCHS,
    EVAL_PROMPTS,
    EVALS,
    FEEDBACK_QUALITY,
    FEEDBACK_SHARE,
    INCIDENT,
    POLICY,
    REPORTED,
    SHADOWS,
    VERSION_SWITCH_AT,
    Scenario,
    scenarios,
)

from modelroute.outcomes import Outcome, OutcomeSource, prompt_hash
from modelroute.policy import Policy, load_policy
from modelroute.records.record import RequestStatus
from modelroute.records.stores.body import BODY_FIELDS, REQUEST_COLUMNS
from modelroute.records.task_key import task_key

DAY = 86_400.0
CHUNK = 100_000

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
        live = asyncio.run(write_postgres(target, chunks(plan), plan.stats_rows, progress))
    else:
        live = write_sqlite(target, chunks(plan), plan.stats_rows, progress)
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
