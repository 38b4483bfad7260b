"""The prototypes of ``synth_store.py``: one ``RequestRecord`` per template, epoch of the
planner's statistics, model version and request shape, built as ``RecordBuilder`` builds one
(the real ``request_context`` and planner) and encoded once by the stores' ``RowEncoder``,
with sentinel values where requests differ; and the per-request fields the templates draw.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))

from synth_scenarios import (
    DOMAINS,
    EPOCHS,
    FINGERPRINTS,
    FIRST,
    LAST,
    REFUNDS,
    REPORTED,
    REVIEWS,
    SENTENCES,
    SUBJECTS,
    TICKETS,
    Scenario,
)

from modelroute.features import request_context
from modelroute.planner import Decision, ModelStats, StatsSnapshot, plan
from modelroute.policy import Policy
from modelroute.recording import _prompt_text
from modelroute.records.planner_input import PlannerInput
from modelroute.records.record import (
    Attempt,
    AttemptResult,
    RequestRecord,
    RequestStatus,
)
from modelroute.records.stores.body import REQUEST_COLUMNS, RowEncoder
from modelroute.types import Usage

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
