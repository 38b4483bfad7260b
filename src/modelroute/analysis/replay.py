"""Replaying recorded decisions: ``plan`` again on each record's planner input, under a policy.

Under the policy a record was recorded with (the same policy hash), the planner is pure and
the record holds everything it read, so the decision must come out exactly as recorded: a
record that does not is a defect, and the report lists it. Under another policy the replay
says what would change, per route: the steps (route, models and their order, relaxed or not),
the model tried first, what becomes feasible or infeasible, and a cost projection.

The projection prices each record's recorded token usage at the prices, in the replayed
policy, of the model that policy would try first. It is not a simulation: retries, fallbacks
and escalations are not replayed, and a different model would have answered with a different
number of tokens. Records it cannot price are counted by reason, never priced at zero.

A record keeps the statistics read for the candidates of the route it was planned on. A new
policy that plans a record on another route, or considers models the recorded route did not,
finds no recorded figures for them and uses the policy's priors, as the planner does for any
model without measurements; such records are counted (``planned_on_priors``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from modelroute.errors import UnknownRouteError
from modelroute.planner import Decision, plan
from modelroute.policy import Policy
from modelroute.pricing import cost_of
from modelroute.records.planner_input import PlannerInput
from modelroute.types import Usage

# Why a record's cost could not be projected.
NO_USAGE = "no recorded usage (failed, infeasible or refused requests)"
UNPRICED_RECORD = "recorded with usage that had no price"
REFUSED = "the replayed policy would refuse the request"
NO_PRICE = "no price in the replayed policy for the model it would try first"

MAX_LISTED = 20  # records named in the report for each kind of finding


@dataclass(slots=True)
class RouteTally:
    """One recorded route's findings. Costs add up over priced records only."""

    records: int = 0
    replayed: int = 0
    same_policy: int = 0  # recorded under the replayed policy (its hash)
    reproduced: int = 0  # replayed decision identical to the recorded one
    changed: int = 0  # route, steps or relaxation differ
    chosen_changed: int = 0  # the model tried first differs
    now_infeasible: int = 0
    now_feasible: int = 0
    planned_on_priors: int = 0
    priced: int = 0
    recorded_usd: float = 0.0
    projected_usd: float = 0.0
    unpriced: Counter[str] = field(default_factory=Counter)
    chosen_models: Counter[str] = field(default_factory=Counter)  # tried first, replayed

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "replayed": self.replayed,
            "same_policy": self.same_policy,
            "reproduced": self.reproduced,
            "changed": self.changed,
            "chosen_changed": self.chosen_changed,
            "now_infeasible": self.now_infeasible,
            "now_feasible": self.now_feasible,
            "planned_on_priors": self.planned_on_priors,
            "chosen_models": dict(self.chosen_models.most_common()),
            "cost": {
                "priced": self.priced,
                "recorded_usd": self.recorded_usd,
                "projected_usd": self.projected_usd,
                "difference_usd": self.projected_usd - self.recorded_usd,
                "unpriced": dict(self.unpriced),
            },
        }


@dataclass(slots=True)
class Finding:
    """A record worth naming: not reproduced under its own policy, or changed by a new one."""

    request_id: str
    route: str | None
    recorded: str  # a one-line summary of the recorded decision
    replayed: str
    difference: str  # the first field that differs

    def to_dict(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "route": self.route,
            "recorded": self.recorded,
            "replayed": self.replayed,
            "difference": self.difference,
        }


class Replay:
    """Feed it stored records (``Store.scan`` pages) with ``add``; read ``report``."""

    def __init__(self, policy: Policy, policy_path: str = "") -> None:
        self.policy = policy
        self.policy_path = policy_path
        self.routes: dict[str, RouteTally] = {}
        self.hashes: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()
        self.not_reproduced: list[Finding] = []
        self.not_reproduced_count = 0
        self.changed: list[Finding] = []

    def add(self, record: Mapping[str, Any]) -> None:
        tally = self.routes.setdefault(str(record.get("route") or "-"), RouteTally())
        tally.records += 1
        self.hashes[str(record.get("policy_hash") or "")] += 1
        raw = record.get("planner_input")
        if raw is None:
            self.skipped[_why_not_replayable(record)] += 1
            return
        planner_input = PlannerInput.from_dict(raw)
        recorded = record.get("decision")
        # A learned route's predicted scores are recorded with its decision: replayed as given.
        learned = recorded.get("learned") if isinstance(recorded, Mapping) else None
        scores = learned.get("scores") if isinstance(learned, Mapping) else None
        try:
            new: Decision | None = plan(
                planner_input.context, self.policy, planner_input.stats, scores
            )
        except UnknownRouteError:
            new = None
        tally.replayed += 1
        replayed = None if new is None else new.to_dict()
        same = record.get("policy_hash") == self.policy.hash
        tally.same_policy += same
        # Under another policy the decision's policy hash differs by definition: compare the rest.
        exact = _canonical(recorded, same) == _canonical(replayed, same)
        tally.reproduced += exact
        if same and not exact:
            self.not_reproduced_count += 1
            if len(self.not_reproduced) < MAX_LISTED:
                self.not_reproduced.append(_finding(record, recorded, replayed))
        self._compare(tally, record, recorded, new)
        self._project(tally, record, new)

    def _compare(
        self,
        tally: RouteTally,
        record: Mapping[str, Any],
        recorded: Mapping[str, Any] | None,
        new: Decision | None,
    ) -> None:
        replayed = None if new is None else new.to_dict()
        if _steps(recorded) != _steps(replayed):
            tally.changed += 1
            if len(self.changed) < MAX_LISTED:
                self.changed.append(_finding(record, recorded, replayed))
        if _chosen(recorded) != _chosen(replayed):
            tally.chosen_changed += 1
        if new is not None and new.chosen is not None:
            tally.chosen_models[new.chosen] += 1
        was, now = bool(_chosen(recorded)), bool(_chosen(replayed))
        tally.now_infeasible += was and not now
        tally.now_feasible += now and not was
        if new is not None and not _covered(new, recorded):
            tally.planned_on_priors += 1

    def _project(self, tally: RouteTally, record: Mapping[str, Any], new: Decision | None) -> None:
        usage = record.get("usage")
        if usage is None:
            tally.unpriced[NO_USAGE] += 1
        elif record.get("price_unknown"):
            tally.unpriced[UNPRICED_RECORD] += 1
        elif new is None or new.chosen is None:
            tally.unpriced[REFUSED] += 1
        else:
            cost = cost_of(Usage(**usage), self.policy.models[new.chosen].prices)
            if not cost.known:
                tally.unpriced[NO_PRICE] += 1
                return
            tally.priced += 1
            tally.recorded_usd += float(record.get("cost_usd") or 0.0)
            tally.projected_usd += cost.usd

    def report(self) -> dict[str, Any]:
        """Everything found, as plain data (``--json`` prints it as is)."""
        total = RouteTally()
        for tally in self.routes.values():
            for name in RouteTally.__dataclass_fields__:
                if name in ("unpriced", "chosen_models"):
                    getattr(total, name).update(getattr(tally, name))
                else:
                    setattr(total, name, getattr(total, name) + getattr(tally, name))
        return {
            "policy": {
                "path": self.policy_path,
                "hash": self.policy.hash,
                "version": self.policy.version,
            },
            "records_by_policy": dict(self.hashes.most_common()),
            "not_replayable": dict(self.skipped),
            "routes": {name: t.to_dict() for name, t in sorted(self.routes.items())},
            "total": total.to_dict(),
            "not_reproduced": {
                "count": self.not_reproduced_count,
                "first": [f.to_dict() for f in self.not_reproduced],
            },
            "changed_examples": [f.to_dict() for f in self.changed],
            "projection": PROJECTION,
        }


PROJECTION = (
    "projected cost: each record's recorded token usage priced at the replayed policy's prices "
    "for the model it would try first; retries, fallbacks and escalations are not simulated"
)


def _why_not_replayable(record: Mapping[str, Any]) -> str:
    if record.get("status") == "client_error":
        return "refused before planning (bad request)"
    return "recorded without planner input (before schema version 5)"


def _canonical(decision: Any, with_hash: bool = True) -> Any:
    """As JSON would carry it: tuples and lists alike, a non-finite limit as null."""
    data = orjson.loads(orjson.dumps(decision))
    if not with_hash and isinstance(data, dict):
        data.pop("policy_hash", None)
    return data


def _steps(d: Mapping[str, Any] | None) -> Any:
    if d is None:
        return None
    tiers = tuple(tuple(c["model"] for c in tier) for tier in d.get("tiers") or ())
    return d.get("route"), tiers, d.get("relaxed")


def _chosen(d: Mapping[str, Any] | None) -> str | None:
    return None if d is None else d.get("chosen")


def _covered(new: Decision, recorded: Mapping[str, Any] | None) -> bool:
    """Were the statistics for every candidate of ``new`` recorded?"""
    if recorded is None:
        return False
    models = {m for tier in recorded.get("tiers") or () for m in (c["model"] for c in tier)}
    models.update(r["model"] for r in recorded.get("rejections") or ())
    wanted = {c.model for tier in new.tiers for c in tier} | {r.model for r in new.rejections}
    return new.route == recorded.get("route") and wanted <= models


def _summary(d: Mapping[str, Any] | None) -> str:
    if d is None:
        return "no route"
    steps = " -> ".join(" | ".join(c["model"] for c in tier) for tier in d.get("tiers") or ())
    text = f"{d.get('route')}: {steps or 'infeasible'}"
    return text + (f" (relaxed {d['relaxed']})" if d.get("relaxed") else "")


def _finding(
    record: Mapping[str, Any], recorded: Mapping[str, Any] | None, replayed: Any
) -> Finding:
    return Finding(
        str(record.get("request_id")),
        record.get("route"),
        _summary(recorded),
        _summary(replayed),
        _first_difference(_canonical(recorded), _canonical(replayed)),
    )


def _first_difference(a: Any, b: Any, path: str = "decision") -> str:
    if type(a) is not type(b):
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, dict):
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                return _first_difference(a.get(key), b.get(key), f"{path}.{key}")
    if isinstance(a, list):
        if len(a) != len(b):
            return f"{path}: {len(a)} items != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            if x != y:
                return _first_difference(x, y, f"{path}[{i}]")
    return "" if a == b else f"{path}: {a!r} != {b!r}"
