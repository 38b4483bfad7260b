"""The router's side of session affinity: find the request's session, read its pin before
planning, and move the pin to the model that answered.

The decision is the planner's (``planner/affinity.py``): the router gives it the pin through
``RequestContext.pin``, which the record keeps with the rest of the planner's input, so that
replaying the record gives the same decision. A pin store that cannot be reached (Redis down)
does not fail the request: the session is planned as new, and a log line says why.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from modelroute.planner import Decision
from modelroute.planner.affinity import affine
from modelroute.policy import Policy
from modelroute.policy.compiled import AffinityRule
from modelroute.records.planner_input import PlannerInput
from modelroute.records.record import RequestRecord
from modelroute.sessions.keys import Session, session_of
from modelroute.sessions.pins import PinStore

log = logging.getLogger("modelroute.sessions")


class Affinities:
    def __init__(self, pins: PinStore) -> None:
        self.pins = pins

    @staticmethod
    def rule(policy: Policy, decision: Decision) -> AffinityRule | None:
        route = policy.routes.get(decision.route) if decision.strategy != "direct" else None
        return None if route is None else route.affinity

    def session(
        self,
        policy: Policy,
        decision: Decision,
        body: Mapping[str, Any],
        headers: Mapping[str, str] | None,
    ) -> Session | None:
        """The request's session, when its route has affinity (else None: nothing to do)."""
        if decision.affinity is None or self.rule(policy, decision) is None:
            return None
        return session_of(body, headers)

    async def look_up(
        self, record: RequestRecord, policy: Policy, decision: Decision, session: Session
    ) -> Decision:
        """The decision with the session's pin applied (``decision`` was planned without
        one: ``initialize``, which stands when the session has no pin); the record's planner
        input gets the pin."""
        rule = self.rule(policy, decision)
        assert rule is not None
        record.session = session.label
        try:
            pin = await self.pins.get(decision.route, session.key, rule.ttl_s, rule.max_sessions)
        except Exception as err:  # any store failure: plan as a new session
            log.warning("session pins unreachable (%s): planned as a new session", err)
            return decision
        planned = record.planner_input
        if pin is None or planned is None:
            return decision
        record.planner_input = PlannerInput(planned.context._replace(pin=pin), planned.snapshot)
        return affine(decision, rule, pin)

    async def served(
        self, policy: Policy, decision: Decision, session: Session, model: str
    ) -> None:
        """``model`` answered: pin the session to it, unless it is pinned there already (its
        lapse time was pushed back when it was read)."""
        rule = self.rule(policy, decision)
        affinity = decision.affinity
        if rule is None or affinity is None:
            return
        if affinity.pinned == model:
            return
        try:
            await self.pins.put(decision.route, session.key, model, rule.ttl_s, rule.max_sessions)
        except Exception as err:  # the answer stands; the next turn re-pins
            log.warning("session pin not written (%s)", err)
