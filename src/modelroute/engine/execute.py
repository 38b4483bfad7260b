"""Executing a decision: tiers in order, escalating on low confidence.

A tier is walked candidate by candidate (``walk.py``). In a cascade, an answer from a tier
before the last is scored by the route's confidence signal; below the threshold the request
escalates to the next tier. If every later tier fails (the deadline passing or a failure
that ends the walk at once included), the most confident of the doubted answers is returned
rather than an error: an answer the policy doubted beats none. Its attempt stays
``low_confidence`` and its message says it answered.

A verifier is called like any upstream: within one attempt's time, and not while its
breaker is open; no verdict scores 0 (when in doubt, escalate).

Streaming uses the same walk. A streamed request commits to the client at its first content
byte; before that every failure can fall back. Early cascade tiers are asked without
streaming (confidence needs the whole answer) and replayed as a stream when accepted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any

from modelroute.confidence import confidence, needs_logprobs, verifier_prompt, verifier_score
from modelroute.engine.attempt import EngineDeps, OpenStream, call, open_stream
from modelroute.engine.outgoing import forget_previous
from modelroute.engine.walk import AllAttemptsFailed, Discard, TryOnce, Walk
from modelroute.failures import Failure
from modelroute.planner.decision import Candidate, Decision
from modelroute.policy.compiled import ConfidenceRule, Model, Policy, Route
from modelroute.records.record import Attempt, AttemptResult
from modelroute.types import Completion

VERIFIER_TIER = -1  # a verifier's attempts are recorded outside the route's tiers
KEPT_DOUBTED = "below the confidence threshold; answered because every later tier failed"


@dataclass(slots=True)
class Answer:
    completion: Completion
    model: Model
    attempt: Attempt
    confidence: float | None


@dataclass(slots=True)
class Execution:
    """What executing a decision produced, the one value the engine hands back: every attempt,
    and the answer, or the stream open past its first byte, or the failure that ended it.
    ``escalations``: cascade tiers whose answer was doubted."""

    attempts: list[Attempt]
    answer: Answer | None = None  # for a stream: an early cascade tier's answer, to replay
    stream: OpenStream | None = None
    escalations: int = 0
    failure: Failure | None = None


def route_of(policy: Policy, decision: Decision) -> Route:
    if decision.strategy == "direct":
        return policy.direct[decision.route]
    return policy.routes[decision.route]


def with_logprobs(body: dict[str, Any]) -> dict[str, Any]:
    top = body.get("top_logprobs")
    return {**body, "logprobs": True, "top_logprobs": max(5, top if isinstance(top, int) else 0)}


class Executor:
    def __init__(
        self,
        deps: EngineDeps,
        policy: Policy,
        decision: Decision,
        body: dict[str, Any],
        start: float,
    ) -> None:
        self.deps = deps
        self.decision = decision
        self.route = route_of(policy, decision)
        self.body = body
        forget = partial(forget_previous, body)
        self.walk: Walk[Any] = Walk(deps, policy, self.route, start, forget)
        self.escalations = 0
        self.doubted: Answer | None = None  # the most confident answer that escalated

    @property
    def attempts(self) -> list[Attempt]:
        return self.walk.attempts

    async def _tier(
        self,
        index: int,
        tier: tuple[Candidate, ...],
        try_once: TryOnce[Any],
        discard: Discard[Any] | None = None,
    ) -> tuple[Any, Model, Attempt] | None:
        if self.route.hedge_after_ms is not None and len(tier) >= 2:
            found = await self.walk.hedged(index, tier[0], tier[1], try_once, discard)
            if found is not None or len(tier) == 2:
                return found
            tier = tier[2:]
        return await self.walk.tier(index, tier, try_once)

    def _caller(self, body: dict[str, Any]) -> TryOnce[Completion]:
        # The walk supplies (model, attempt, timeout); a partial adds no coroutine of its own.
        return partial(call, self.deps, body)

    async def _score(self, rule: ConfidenceRule, completion: Completion) -> float:
        if rule.signal != "verifier":
            return confidence(rule, completion)
        assert rule.verifier is not None
        verifier = self.walk.policy.models[rule.verifier]
        if not self.walk.allowed(verifier, VERIFIER_TIER):
            return 0.0  # its circuit is open (the skip is recorded): no verdict
        attempt = self.walk.new_attempt(verifier, VERIFIER_TIER)
        attempt.message = "verifier"
        timeout = min(self.route.timeouts.attempt_ms / 1000, max(self.walk.remaining(), 0.001))
        prompt = verifier_prompt(self.body, completion.content or "")
        verdict, _ = await call(self.deps, prompt, verifier, attempt, timeout)
        return 0.0 if verdict is None else verifier_score(verdict)

    async def early_tiers(self) -> Answer | None:
        """Tiers before the last (cascades only). Returns an accepted answer, or ``None`` to go
        on to the last tier; ``self.doubted`` keeps the best answer that escalated."""
        tiers = self.decision.tiers
        rule = self.route.confidence
        if rule is None or len(tiers) < 2:
            return None
        body = with_logprobs(self.body) if needs_logprobs(rule) else self.body
        body = {**body, "stream": False}
        for index, tier in enumerate(tiers[:-1]):
            found = await self._tier(index, tier, self._caller(body))
            if found is None:
                continue
            completion, model, attempt = found
            score = await self._score(rule, completion)
            attempt.confidence = score
            answer = Answer(completion, model, attempt, score)
            if score >= rule.threshold:
                return answer
            attempt.outcome = AttemptResult.LOW_CONFIDENCE
            self.escalations += 1
            if self.doubted is None or (self.doubted.confidence or 0) < score:
                self.doubted = answer
        return None

    @property
    def _cascades(self) -> bool:
        return self.route.confidence is not None and len(self.decision.tiers) >= 2

    def _done(self, found: Answer | OpenStream) -> Execution:
        if isinstance(found, OpenStream):
            return Execution(self.attempts, None, found, self.escalations)
        return Execution(self.attempts, found, None, self.escalations)

    async def complete(self) -> Execution:
        """Run the decision to an answer, or to the failure that decides the error."""
        try:
            return self._done(await self._complete())
        except AllAttemptsFailed as err:
            return Execution(self.attempts, escalations=self.escalations, failure=err.failure)

    async def stream(self) -> Execution:
        """Run the decision to a stream open past its first byte (or an accepted early-tier
        answer to replay), or to the failure that decides the error."""
        try:
            return self._done(await self._stream())
        except AllAttemptsFailed as err:
            return Execution(self.attempts, escalations=self.escalations, failure=err.failure)

    def _doubted_or(self, failed: AllAttemptsFailed) -> Answer:
        """Every tier after the doubted answers failed: the most confident of them answers."""
        if self.doubted is None:
            raise failed
        self.doubted.attempt.message = KEPT_DOUBTED
        return self.doubted

    async def _complete(self) -> Answer:
        try:
            accepted = await self.early_tiers() if self._cascades else None
            if accepted is not None:
                return accepted
            tiers = self.decision.tiers
            last = len(tiers) - 1
            caller = self._caller(self.body)
            found = await self._tier(last, tiers[last], caller) if tiers else None
            if found is None:
                raise self.walk.fail()
        except AllAttemptsFailed as failed:
            return self._doubted_or(failed)
        completion, model, attempt = found
        return Answer(completion, model, attempt, None)

    async def _stream(self) -> OpenStream | Answer:
        """An open stream from the last tier, or an accepted early-tier answer to replay."""
        try:
            accepted = await self.early_tiers() if self._cascades else None
            if accepted is not None:
                return accepted
            tiers = self.decision.tiers
            last = len(tiers) - 1
            once: TryOnce[OpenStream] = partial(open_stream, self.deps, self.body)
            found = await self._tier(last, tiers[last], once, OpenStream.aclose) if tiers else None
            if found is None:
                raise self.walk.fail()
        except AllAttemptsFailed as failed:
            return self._doubted_or(failed)
        opened: OpenStream = found[0]
        return opened
