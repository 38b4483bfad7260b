"""One model asked directly, as a request naming it would be: its own retries and timeouts
(the policy's defaults), no fallbacks. Shadow calls and judging go out this way."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from modelroute.engine.attempt import EngineDeps, call
from modelroute.engine.walk import AllAttemptsFailed, Walk
from modelroute.failures import Failure
from modelroute.planner import Candidate, Estimate
from modelroute.policy.compiled import Policy
from modelroute.records.record import Attempt, AttemptResult
from modelroute.types import Completion

CIRCUIT_OPEN = "circuit_open"


@dataclass(slots=True)
class Sent:
    """What asking one model produced: its answer or the failure that ended it, every
    attempt (for cost), and how long it took from the first attempt to the end."""

    completion: Completion | None
    failure: str | None  # a FailureClass value, or ``circuit_open``
    attempts: list[Attempt]
    latency_ms: float

    @property
    def cost_usd(self) -> float:
        return sum(a.cost_usd or 0.0 for a in self.attempts)

    @property
    def reached_upstream(self) -> bool:
        """False when every attempt was skipped (the model's breaker is open)."""
        return any(a.outcome != AttemptResult.SKIPPED for a in self.attempts)

    @property
    def reported_model(self) -> str | None:
        return None if self.completion is None else self.completion.model_reported


async def ask_directly(
    deps: EngineDeps, policy: Policy, model_name: str, body: dict[str, Any]
) -> Sent:
    """Send ``body`` (non-streamed) to ``model_name`` alone, under its direct route."""
    model = policy.models[model_name]
    route = policy.direct[model_name]
    start = deps.clock()
    walk: Walk[Completion] = Walk(deps, policy, route, start)
    candidate = Candidate(model_name, Estimate(0.0, model.latency_p95_ms, "prior", None, "unknown"))
    failure: Failure | None
    try:
        found = await walk.tier(0, (candidate,), partial(call, deps, body))
    except AllAttemptsFailed as err:  # a fatal class, or the deadline
        found, failure = None, err.failure
    else:
        failure = None if found is not None else walk.last_failure
    latency_ms = (deps.clock() - start) * 1000
    if found is not None:
        return Sent(found[0], None, walk.attempts, latency_ms)
    cls = failure.cls.value if failure is not None else CIRCUIT_OPEN
    return Sent(None, cls, walk.attempts, latency_ms)
