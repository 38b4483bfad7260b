"""Walking a decision's candidates: retries, fallbacks by failure class, one deadline.

Rules (decided on the failure class only):
- a class in the route's ``retries.on`` is retried on the same model, after backoff with full
  jitter that honours ``Retry-After``, while the deadline allows; then the next candidate;
- ``context_length`` skips to the next candidate with a larger context window;
- ``auth`` and ``bad_request`` fail fast: the same request fails the same way anywhere;
- ``previous_response_unknown`` (an upstream that keeps Responses API responses no longer
  has the one the request named to it) resends the request to the same model at once, once,
  with the whole conversation instead of the id (``forget``); a request that cannot be
  resent so fails fast;
- any other class falls back to the next candidate;
- a model whose circuit is open (now, not only at planning time) is skipped, and the skip is
  an attempt in the record with its reason; a candidate the planner kept as a probe despite
  its open circuit (``Candidate.probe``) goes out if the breaker's one probe is free;
- a retry that waited out the provider's ``Retry-After`` is sent even if rate limits have
  put the model in a cool-down meanwhile: it waited for exactly that.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from modelroute.engine.attempt import EngineDeps
from modelroute.engine.backoff import backoff_s
from modelroute.errors import ModelrouteError
from modelroute.failures import FATAL, Failure, FailureClass
from modelroute.planner.decision import Candidate
from modelroute.policy.compiled import Model, Policy, Route
from modelroute.records.record import Attempt, AttemptResult

T = TypeVar("T")
TryOnce = Callable[[Model, Attempt, float], Awaitable[tuple[T | None, Failure | None]]]
# Gives up a result nobody will use (an open stream that lost a hedge race).
Discard = Callable[[T], Awaitable[None]]
# Told a model's upstream does not keep the previous response the request named to it:
# whether the request can be resent to it whole (``engine.outgoing.forget_previous``).
Forget = Callable[[Model], bool]
# The message of the attempt that resent a request whole (it stays when the attempt succeeds).
RESENT_WHOLE = "resent whole: the upstream no longer keeps the previous response"
# The attempts of a hedge race that are still out, with the model and record of each.
Tasks = dict[asyncio.Task[tuple[T | None, Failure | None]], tuple[Model, Attempt]]


class AllAttemptsFailed(ModelrouteError):
    """Every attempt failed. ``failure`` is the one that decides the error the client gets."""

    def __init__(self, failure: Failure, attempts: list[Attempt]) -> None:
        self.failure = failure
        self.attempts = attempts
        super().__init__(f"{failure.cls.value}: {failure.message}")


class Walk(Generic[T]):
    """The state of one request's execution: its attempts, deadline and last failure."""

    def __init__(
        self,
        deps: EngineDeps,
        policy: Policy,
        route: Route,
        start: float,
        forget: Forget | None = None,
    ) -> None:
        self.deps = deps
        self.forget: Forget = forget or _cannot_resend
        self.policy = policy
        self.route = route
        self.start = start
        self.deadline = start + route.timeouts.total_ms / 1000
        self.attempts: list[Attempt] = []
        self.last_failure: Failure | None = None
        self.circuit_skips = 0

    def new_attempt(self, model: Model, tier: int) -> Attempt:
        attempt = Attempt(
            model=model.name,
            provider=model.provider,
            model_id=model.model_id,
            tier=tier,
            started_ms=(self.deps.clock() - self.start) * 1000,
        )
        self.attempts.append(attempt)
        return attempt

    def remaining(self) -> float:
        return self.deadline - self.deps.clock()

    def fail(self, failure: Failure | None = None) -> AllAttemptsFailed:
        chosen = failure or self.last_failure
        if chosen is None and self.circuit_skips:
            # Open circuits only, a passing condition: 503 with Retry-After, as when the
            # planner finds every candidate's circuit open.
            chosen = Failure(
                FailureClass.OVERLOADED, 0, "no candidate could be attempted: circuits open", 1.0
            )
        elif chosen is None:
            chosen = Failure(FailureClass.SERVER_ERROR, 0, "no candidate could be attempted")
        return AllAttemptsFailed(chosen, self.attempts)

    def _skip(self, model: Model, tier: int, why: str) -> None:
        attempt = self.new_attempt(model, tier)
        attempt.outcome, attempt.message = AttemptResult.SKIPPED, why

    def allowed(
        self, model: Model, tier: int, *, probe: bool = False, waited: bool = False
    ) -> bool:
        """Whether the breaker lets a call to ``model`` out; a refusal is recorded as a skip."""
        breakers = self.deps.breakers
        if breakers.allow(model.name, probe=probe, waited=waited):
            return True
        self.circuit_skips += 1
        self._skip(model, tier, breakers.why_not(model.name))
        return False

    async def tier(
        self, tier: int, candidates: tuple[Candidate, ...], try_once: TryOnce[T]
    ) -> tuple[T, Model, Attempt] | None:
        """First success in this tier, or ``None`` when every candidate failed."""
        larger_than = 0
        for candidate in candidates:
            model = self.policy.models[candidate.model]
            if model.context_window <= larger_than:
                self._skip(model, tier, "context window not larger than one that overflowed")
                continue
            if not self.allowed(model, tier, probe=candidate.probe):
                continue
            found = await self._model(tier, model, try_once)
            if found is not None:
                return found[0], model, found[1]
            if self.last_failure is not None and (
                self.last_failure.cls is FailureClass.CONTEXT_LENGTH
            ):
                larger_than = max(larger_than, model.context_window)
        return None

    def _whole_now(self, model: Model, failure: Failure) -> bool:
        """Whether the request goes to ``model`` again, whole: its upstream said it does not
        keep the previous response the request named to it (it is sent at once, when its
        breaker lets it, else the walk falls back)."""
        return failure.cls is FailureClass.PREVIOUS_RESPONSE_UNKNOWN and self.forget(model)

    async def _model(
        self, tier: int, model: Model, try_once: TryOnce[T]
    ) -> tuple[T, Attempt] | None:
        retries = self.route.retries
        retry, whole = 0, False
        while retry < retries.max_attempts:
            left = self.remaining()
            if left <= 0:
                self.deps.breakers.release(model.name)  # allowed, but never called
                raise self.fail(
                    Failure(
                        FailureClass.TIMEOUT,
                        0,
                        f"deadline of {self.route.timeouts.total_ms} ms passed",
                    )
                )
            attempt = self.new_attempt(model, tier)
            attempt.message = RESENT_WHOLE if whole else None
            timeout = min(self.route.timeouts.attempt_ms / 1000, left)
            result, failure = await try_once(model, attempt, timeout)
            if failure is None:
                assert result is not None
                return result, attempt
            self.last_failure = failure
            whole = self._whole_now(model, failure)
            if whole:
                if not self.allowed(model, tier):
                    return None
                continue  # not a retry: another request, sent at once
            if failure.cls in FATAL:
                raise self.fail(failure)
            if failure.cls.value not in retries.on or retry == retries.max_attempts - 1:
                return None
            wait = backoff_s(retries, retry, failure.retry_after_s, self.deps.rng)
            if wait >= self.remaining():
                return None  # fall back now rather than sleep past the deadline
            await self.deps.sleep(wait)
            if not self.allowed(model, tier, waited=failure.retry_after_s is not None):
                return None
            retry += 1
        return None

    async def hedged(
        self,
        tier: int,
        first: Candidate,
        second: Candidate,
        try_once: TryOnce[T],
        discard: Discard[T] | None = None,
    ) -> tuple[T, Model, Attempt] | None:
        """Start ``first``; if it has not answered after ``hedge_after_ms``, start ``second``
        too. The first success wins, the other is cancelled; both are recorded. If ``first``
        fails before the hedge time, ``second`` starts at once as its fallback.

        A result that loses (both can succeed in the same instant) is given to ``discard``:
        an open stream holds its upstream connection until it is closed."""
        assert self.route.hedge_after_ms is not None
        models = [self.policy.models[first.model], self.policy.models[second.model]]
        probes = {first.model: first.probe, second.model: second.probe}
        tasks: Tasks[T] = {}
        partner: list[Model] = [models[1]]  # until it is launched (or ruled out)

        def launch(model: Model) -> None:
            attempt = self.new_attempt(model, tier)
            timeout = min(self.route.timeouts.attempt_ms / 1000, max(self.remaining(), 0.001))
            tasks[asyncio.ensure_future(try_once(model, attempt, timeout))] = (model, attempt)

        def launch_partner(overflowed: Model | None = None) -> None:
            if not partner:
                return
            model = partner.pop()
            if overflowed is not None and model.context_window <= overflowed.context_window:
                self._skip(model, tier, "context window not larger than one that overflowed")
            elif self.allowed(model, tier, probe=probes[model.name]):
                launch(model)

        if self.allowed(models[0], tier, probe=probes[models[0].name]):
            launch(models[0])
            done, _ = await asyncio.wait(tasks, timeout=self.route.hedge_after_ms / 1000)
            if not done:
                launch_partner()
        else:
            launch_partner()
        try:
            while tasks:
                done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    model, attempt = tasks.pop(task)
                    result, failure = task.result()
                    if failure is None:
                        assert result is not None
                        return result, model, attempt
                    self.last_failure = failure
                    if self._whole_now(model, failure):
                        if self.allowed(model, tier):
                            launch(model)
                            self.attempts[-1].message = RESENT_WHOLE
                        else:
                            launch_partner()
                        continue
                    if failure.cls in FATAL:
                        raise self.fail(failure)
                    overflowed = model if failure.cls is FailureClass.CONTEXT_LENGTH else None
                    launch_partner(overflowed)  # failed before the hedge time: fall back now
            return None
        finally:
            await self._drop_losers(tasks, discard)

    async def _drop_losers(self, tasks: Tasks[T], discard: Discard[T] | None) -> None:
        """Cancel the attempts still running and wait until each has unwound (a cancelled
        attempt closes its upstream as it unwinds); discard what any of them produced
        anyway. Nothing of theirs outlives the race."""
        for task in tasks:
            task.cancel()
        outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for (model, attempt), outcome in zip(tasks.values(), outcomes, strict=True):
            if isinstance(outcome, tuple):
                result, failure = outcome
                if failure is not None:
                    continue  # it failed on its own, and is recorded as such
                if result is not None and discard is not None:
                    await discard(result)
            attempt.outcome, attempt.message = AttemptResult.CANCELLED, "lost the hedge race"
            attempt.latency_ms = (self.deps.clock() - self.start) * 1000 - attempt.started_ms
            self.deps.breakers.failure(model.name)  # no verdict on the model


def _cannot_resend(model: Model) -> bool:
    return False
