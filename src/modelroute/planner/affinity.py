"""Session affinity, the planner's side: keep a conversation on the model that served it.

``affine(decision, rule, pin)`` is pure. It takes the planner's own decision and the model the
session is pinned to (``RequestContext.pin``, looked up by the router before planning, like
the statistics snapshot) and says what affinity did, on the decision:

- ``initialize``: the session has no pin (new, or its pin lapsed); the planner's choice
  stands and becomes the pin once it answers;
- ``retain``: the pinned model goes first. ``sticky`` keeps it whenever it is offered;
  ``adaptive`` only while the planner's first choice is not better than it by more than the
  route's margin in the route's objective;
- ``switch``: the planner's choice stands instead of the pin, because the pinned model was
  turned down (its circuit is open, or a hard constraint rejects it: context, capability,
  cost ceiling, latency budget, min quality), is no candidate of the route any more, or
  (adaptive) the first choice is better by more than the margin.

A model that fails on the request itself falls back as any first choice does; the pin then
moves to the model that answered (the router's side, ``modelroute.sessions``). Planning the
recorded input again (``plan(ctx, policy, stats)`` with ``ctx.pin``) gives the same decision.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Any, NamedTuple

from modelroute.planner.decision import Candidate, Decision, Reason
from modelroute.policy.compiled import AffinityRule


class Action(StrEnum):
    INITIALIZE = "initialize"
    RETAIN = "retain"
    SWITCH = "switch"


class Why(StrEnum):
    NO_PIN = "no_pin"  # initialize: the session has no pin
    FIRST_CHOICE = "first_choice"  # retain: the pinned model is the planner's choice anyway
    STICKY = "sticky"  # retain: sticky keeps an offered pin
    WITHIN_MARGIN = "within_margin"  # retain (adaptive)
    NOT_COMPARABLE = "not_comparable"  # retain (adaptive): an estimate is missing
    BEYOND_MARGIN = "beyond_margin"  # switch (adaptive)
    REJECTED = "rejected"  # switch: a constraint turned the pinned model down
    CIRCUIT_OPEN = "circuit_open"  # switch: offered only as a circuit probe
    NOT_A_CANDIDATE = "not_a_candidate"  # switch: the route no longer lists the model
    NO_CHOICE = "no_choice"  # switch: no model can serve the request at all


class Affinity(NamedTuple):
    """What session affinity did to one decision (on the decision, so on every record)."""

    mode: str  # "sticky" | "adaptive"
    action: str  # Action
    why: str  # Why
    pinned: str | None  # the session's pin before this request
    first_choice: str | None  # the planner's own first choice
    detail: str | None = None  # for REJECTED: the rejection's reason
    pinned_value: float | None = None  # adaptive: the pin's figure in the objective
    best_value: float | None = None  # adaptive: the first choice's
    margin: float | None = None  # adaptive: the route's margin

    @property
    def message(self) -> str:
        template = _MESSAGES.get(self.why, _MESSAGES[Why.NO_CHOICE])
        return template.format(
            pin=self.pinned,
            first=self.first_choice,
            detail=self.detail,
            best=_fig(self.best_value),
            pinned=_fig(self.pinned_value),
            margin=self.margin,
        )

    def to_dict(self) -> dict[str, Any]:
        return {**self._asdict(), "message": self.message}


def _fig(x: float | None) -> str:
    return "?" if x is None else f"{x:.6g}"


_MARGIN = "{first} ({best}) against pinned {pin} ({pinned}) is {word} the margin {margin:g}"
# Affinity.message, by Why; NO_CHOICE's also stands for any other.
_MESSAGES: dict[str, str] = {
    Why.NO_PIN: "initialize: no pin for this session; {first} will be pinned",
    Why.FIRST_CHOICE: "retain: {pin} is the planner's first choice too",
    Why.STICKY: "retain: sticky session on {pin} (the planner's first choice: {first})",
    Why.NOT_COMPARABLE: "retain: {pin} kept; its estimate and {first}'s cannot be compared",
    Why.WITHIN_MARGIN: "retain: " + _MARGIN.replace("{word}", "within"),
    Why.BEYOND_MARGIN: "switch: " + _MARGIN.replace("{word}", "beyond"),
    Why.REJECTED: "switch: pinned {pin} rejected ({detail}); now {first}",
    Why.CIRCUIT_OPEN: "switch: pinned {pin}'s circuit is open; now {first}",
    Why.NOT_A_CANDIDATE: "switch: pinned {pin} is no candidate of this route; now {first}",
    Why.NO_CHOICE: "switch: no model can serve this request (pinned {pin})",
}


def _objective_value(c: Candidate, objective: str) -> float | None:
    est = c.estimate
    if objective == "min_latency":
        return est.latency_ms
    if objective == "max_quality":
        return est.quality
    return est.cost_usd  # min_cost, and declared_order (ordered as min_cost where it must be)


def _better_by(best: float, pinned: float, objective: str) -> float:
    """How much better the first choice is than the pin, in the margin's unit."""
    if objective == "max_quality":
        return best - pinned
    if pinned <= best:
        return 0.0
    return float("inf") if best <= 0 else pinned / best - 1.0


def _find(decision: Decision, pin: str) -> tuple[int, int, Candidate] | None:
    for t, tier in enumerate(decision.tiers):
        for i, c in enumerate(tier):
            if c.model == pin:
                return t, i, c
    return None


def _pinned_first(decision: Decision, t: int, i: int) -> tuple[tuple[Candidate, ...], ...]:
    """The pinned model first in its tier; a cascade's cheaper tiers before it are dropped
    (the conversation needed that tier already)."""
    tier = decision.tiers[t]
    return ((tier[i], *tier[:i], *tier[i + 1 :]), *decision.tiers[t + 1 :])


def affine(decision: Decision, rule: AffinityRule, pin: str | None) -> Decision:
    """``decision`` with the pinned model first when affinity keeps it, and ``affinity`` set."""
    first = decision.chosen

    def said(action: Action, why: Why, **more: Any) -> Affinity:
        return Affinity(rule.mode, action.value, why.value, pin, first, **more)

    if pin is None:
        return decision._replace(affinity=said(Action.INITIALIZE, Why.NO_PIN))
    if first is None:
        return decision._replace(affinity=said(Action.SWITCH, Why.NO_CHOICE))
    if first == pin and not decision.tiers[0][0].probe:
        return decision._replace(affinity=said(Action.RETAIN, Why.FIRST_CHOICE))
    found = _find(decision, pin)
    if found is None or found[2].probe:
        return decision._replace(affinity=_turned_down(decision, said, pin, found is not None))
    t, i, pinned = found
    if rule.mode == "adaptive":
        objective = decision.objective
        best_value = _objective_value(decision.tiers[0][0], objective)
        pinned_value = _objective_value(pinned, objective)
        if best_value is None or pinned_value is None:
            kept = said(Action.RETAIN, Why.NOT_COMPARABLE, margin=rule.margin)
        else:
            figures = {"pinned_value": pinned_value, "best_value": best_value}
            if _better_by(best_value, pinned_value, objective) > rule.margin:
                switched = said(Action.SWITCH, Why.BEYOND_MARGIN, **figures, margin=rule.margin)
                return decision._replace(affinity=switched)
            kept = said(Action.RETAIN, Why.WITHIN_MARGIN, **figures, margin=rule.margin)
    else:
        kept = said(Action.RETAIN, Why.STICKY)
    return decision._replace(tiers=_pinned_first(decision, t, i), affinity=kept)


def _turned_down(
    decision: Decision, said: Callable[..., Affinity], pin: str, probe: bool
) -> Affinity:
    if probe:
        return said(Action.SWITCH, Why.CIRCUIT_OPEN)
    reasons = [r.reason for r in decision.rejections if r.model == pin]
    if Reason.CIRCUIT_OPEN in reasons:
        return said(Action.SWITCH, Why.CIRCUIT_OPEN)
    if reasons:
        detail = ", ".join(r.value for r in reasons)
        return said(Action.SWITCH, Why.REJECTED, detail=detail)
    return said(Action.SWITCH, Why.NOT_A_CANDIDATE)
