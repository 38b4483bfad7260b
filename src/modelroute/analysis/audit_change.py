"""The policy change that would move over-provisioned tasks to their cheapest qualified model,
and its effect, checked by replaying sampled records under the changed policy (``Replay``).

Per route that serves an over-provisioned task, in the order of the volume moved:

- ``fixed``: the cheaper model goes first in the route's models (the others stay behind it as
  fallbacks);
- ``cheapest_qualified``: the cheaper model joins the route's models if it is not among them;
- either way, the cheaper model's quality prior for the route becomes its measured lower bound
  (never below the threshold it cleared) where the prior was lower: the planner compares it
  with ``min_quality`` until enough outcomes of its own replace it;
- a route is changed only when the cheaper model meets the threshold of every audited task on
  it; otherwise a labelled task gets a route of its own named after its label (a label selects
  a route before any match rule; requests that name a route keep going there until clients
  name the new one, which the replay shows and a note says), and an unlabelled one is left
  where it is with a note: label it first;
- cascades and learned routes get no change: their escalations or scorer decide (``modelroute
  calibrate`` tunes a cascade).

The replay shows what the change does to every audited task.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from modelroute.analysis.audit_model import PolicyChange, TaskFinding
from modelroute.analysis.audit_quality import Quality
from modelroute.analysis.audit_sql import Group
from modelroute.analysis.replay import Replay
from modelroute.errors import PolicyError
from modelroute.policy import Policy, load_policy_dict

_BY_NAME = ("name", "alias")


def _floor(x: float, digits: int = 3) -> float:
    scale = 10**digits
    return float(math.floor(x * scale) / scale)


class _Change:
    def __init__(self, policy: Policy, data: Mapping[str, Any], quality: Quality) -> None:
        self.policy = policy
        self.data = copy.deepcopy(dict(data))
        self.quality = quality
        self.snippet: dict[str, Any] = {}
        self.notes: list[str] = []
        self.changed_routes: set[str] = set()

    def _put(self, path: tuple[str, ...], value: Any) -> None:
        for target in (self.data, self.snippet):
            node = target
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = copy.deepcopy(value)

    def route_level(self, f: TaskFinding, route: str) -> None:
        assert f.cheapest is not None
        spec = self.data["routes"][route]
        strategy = dict(spec["strategy"])
        target = f.cheapest.model
        if strategy["kind"] == "fixed":
            strategy["models"] = [target, *(m for m in strategy["models"] if m != target)]
        elif strategy["kind"] == "cheapest_qualified":
            if strategy.get("models") and target not in strategy["models"]:
                strategy["models"] = [*strategy["models"], target]
        else:
            self.notes.append(
                f"route {route} ({strategy['kind']}) is left as it is for task {f.key}: its "
                f"{'escalations' if strategy['kind'] == 'cascade' else 'scorer'} decide; "
                f"tune it with modelroute calibrate"
            )
            return
        if strategy != spec["strategy"]:
            self._put(("routes", route, "strategy"), strategy)
        self._prior(f, route)  # min_quality binds a fixed route's models too
        self.changed_routes.add(route)

    def _prior(self, f: TaskFinding, route: str) -> None:
        assert f.cheapest is not None and f.threshold is not None
        found = f.cheapest.evidence.found
        low = found.interval.low if found is not None else None
        prior = max(f.threshold, _floor(low if low is not None else f.threshold))
        model = f.cheapest.model
        quality = dict(self.data["models"][model].get("quality") or {})
        if quality.get(route, -1.0) >= prior:
            return
        quality[route] = prior
        self._put(("models", model, "quality"), quality)

    def own_route(self, f: TaskFinding, route: str, named: bool) -> None:
        assert f.cheapest is not None
        served = [s.model for s in f.serving if s.model and s.model != f.cheapest.model]
        spec: dict[str, Any] = {
            "strategy": {"kind": "fixed", "models": [f.cheapest.model, *dict.fromkeys(served)]},
        }
        if f.threshold is not None:
            spec["constraints"] = {"min_quality": f.threshold}
        self._put(("routes", f.key), spec)
        self._prior(f, f.key)
        how = (
            f"its requests name route {route}, which wins over a label: clients send "
            f"model={f.key} (or name no route) for it to apply"
            if named
            else "requests labelled so are routed by their label before any rule"
        )
        self.notes.append(
            f"task {f.key} gets a route of its own, leaving route {route}'s other tasks as "
            f"they are (they are not shown to qualify for {f.cheapest.model}); {how}"
        )


def _unsafe(change: _Change, f: TaskFinding, route: str, tasks: Sequence[TaskFinding]) -> list[str]:
    """The audited tasks on ``route`` that ``f``'s target is not shown to qualify for."""
    assert f.cheapest is not None
    out = []
    for other in tasks:
        if other is f or other.route != route or other.threshold is None:
            continue
        if other.cheapest is not None and other.cheapest.model == f.cheapest.model:
            continue  # it qualifies: moving it is what the audit recommends for it anyway
        least = (
            change.policy.routes[route].min_quality_samples
            if route in change.policy.routes
            else None
        )
        verdict = change.quality.evidence(
            other.key, route, f.cheapest.model, other.threshold, least
        )
        if verdict.verdict != "meets":
            out.append(other.key)
    return out


def _selected_by(f: TaskFinding) -> set[str]:
    return {r.selected_by for s in f.serving for r in s.reasons if r.selected_by}


def propose(
    policy: Policy,
    data: Mapping[str, Any],
    tasks: Sequence[TaskFinding],
    quality: Quality,
    records: Mapping[Group, list[dict[str, Any]]],
) -> PolicyChange | None:
    over = [t for t in tasks if t.status == "over_provisioned" and t.cheapest and t.route]
    if not over:
        return None
    change = _Change(policy, data, quality)
    for f in sorted(over, key=lambda t: -t.over_requests):
        route = str(f.route)
        if route in change.changed_routes or route not in change.data.get("routes", {}):
            continue
        unsafe = _unsafe(change, f, route, tasks)
        if not unsafe:
            change.route_level(f, route)
        elif f.labelled:
            change.own_route(f, route, named=bool(_selected_by(f) & set(_BY_NAME)))
        else:
            target = f.cheapest.model if f.cheapest else "?"
            change.notes.append(
                f"task {f.key} is left on route {route}: the route also serves "
                f"{', '.join(unsafe)}, for which {target} is not shown to meet the threshold; "
                "label the task (x-modelroute-task) to give it a route of its own"
            )
    if not change.snippet:
        return PolicyChange("", change.notes, {})
    snippet = yaml.safe_dump(change.snippet, sort_keys=False, default_flow_style=None)
    try:
        changed = load_policy_dict(change.data, "<policy with the audit's change>")
    except PolicyError as exc:  # a defect of this module, shown rather than hidden
        change.notes.append(f"the changed policy does not load: {exc}")
        return PolicyChange(snippet, change.notes, {})
    return PolicyChange(snippet, change.notes, check(changed, tasks, records))


def check(
    changed: Policy, tasks: Sequence[TaskFinding], records: Mapping[Group, list[dict[str, Any]]]
) -> dict[str, Any]:
    """Replay each task's sampled records under ``changed``; each group's share of replayed
    requests per first model is weighted by the group's requests."""
    per_task: dict[str, Any] = {}
    for f in tasks:
        weights: dict[str, float] = {}
        replayed = recorded = 0
        for group, sample in records.items():
            if group.task_key != f.key or not sample:
                continue
            replay = Replay(changed)
            for record in sample:
                replay.add(record)
            total = replay.report()["total"]
            n = int(total["replayed"])
            recorded += group.usage.requests
            replayed += n
            for model, count in total["chosen_models"].items():
                weights[model] = weights.get(model, 0.0) + group.usage.requests * count / max(n, 1)
        if not replayed:
            continue
        target = f.cheapest.model if f.cheapest else None
        per_task[f.key] = {
            "replayed": replayed,
            "of_requests": recorded,
            "first_model_share": {m: w / recorded for m, w in sorted(weights.items())},
            "target": target,
            "moved_share": weights.get(target, 0.0) / recorded if target else None,
        }
    return {"policy_hash": changed.hash, "tasks": per_task}
