"""The shadow sender: a sampled share of a route's live requests, answered again in the
background by the route's shadow models and compared with what the client got.

On the request path, ``offer`` does only this for a successful request of a shadowed route,
once the client has its answer: draw whether it is sampled, and put what the comparison needs
on a bounded queue (when it is full, the request is dropped and counted). Workers take it from
there: for each shadow model, reserve the estimated cost in the route's daily budget, send the
same request to that model alone (its own retries and timeouts, no fallbacks, and breakers of
its own, so shadow failures never take a model out of live routing), compare the answers,
settle the budget with the actual cost, and store the comparison as an ``Outcome`` (source
``shadow``). Nothing here can delay, change or fail the client's answer, and shadow calls
make no request records: they show in the shadow metrics and in the outcomes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from modelroute.confidence import confidence, needs_logprobs
from modelroute.engine.attempt import EngineDeps
from modelroute.engine.execute import with_logprobs
from modelroute.grading import GradingError, JudgePrompt
from modelroute.outcomes import Outcome, OutcomeSource, prompt_hash
from modelroute.planner import Decision
from modelroute.policy.compiled import ConfidenceRule, Model, Policy, ShadowRule
from modelroute.providers.base import Provider
from modelroute.records.record import RequestRecord
from modelroute.shadow.budget import DailyBudget, Reservation
from modelroute.shadow.compare import (
    JUDGE_OUTPUT_TOKENS,
    JUDGE_OVERHEAD_TOKENS,
    agreement,
    judge_request,
    judge_score,
)
from modelroute.shadow.direct import CIRCUIT_OPEN, Sent, ask_directly
from modelroute.shadow.metrics import ShadowMetrics
from modelroute.state.breakers import Breakers

log = logging.getLogger("modelroute.shadow")


@dataclass(frozen=True, slots=True)
class ShadowSettings:
    """How the shadow worker runs (the policy says what is shadowed, and how much).

    ``budget_share``: this process's share of each route's daily budget; with N gateway
    workers each keeps 1/N, so together they never spend more than the policy allows.
    ``wall_clock``: seconds since the epoch, for the UTC day and the outcomes' time."""

    queue_size: int = 1000
    workers: int = 4
    drain_s: float = 10.0  # how long closing waits for queued comparisons
    wall_clock: Callable[[], float] = time.time
    budget_share: float = 1.0
    metrics: ShadowMetrics | None = None
    judge_prompt: JudgePrompt | None = None  # the grading judge's prompt file by default


class OutcomeSink(Protocol):
    """Where comparisons go: a record store (``Store.add_outcomes``), or memory."""

    async def add_outcomes(self, outcomes: Sequence[Outcome]) -> int: ...


class MemoryOutcomes:
    """Outcomes kept in memory (a router without a store), each id once: the latest
    ``capacity`` of them, as a memory sink keeps the latest records."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.outcomes: deque[Outcome] = deque()
        self.capacity = capacity
        self._ids: set[str] = set()

    async def add_outcomes(self, outcomes: Sequence[Outcome]) -> int:
        new = 0
        for outcome in outcomes:
            if outcome.outcome_id in self._ids:
                continue
            if len(self.outcomes) >= self.capacity:
                self._ids.discard(self.outcomes.popleft().outcome_id)
            self.outcomes.append(outcome)
            self._ids.add(outcome.outcome_id)
            new += 1
        return new


@dataclass(frozen=True, slots=True)
class Job:
    """One sampled request: what every shadow model is sent and compared against."""

    route: str
    rule: ShadowRule
    signal: ConfidenceRule | None  # the route's, to note each shadow answer's confidence
    body: dict[str, Any]  # the client's request, non-streamed
    answer: str  # what the client got
    request_id: str
    task: str | None
    baseline_model: str | None
    baseline_version: str | None
    prompt_tokens: int
    output_tokens: int


@dataclass(slots=True)
class Verdict:
    score: float | None  # None: judging failed
    cost_usd: float = 0.0
    failure: str | None = None
    detail: dict[str, Any] | None = None


def own_generator(rng: random.Random) -> random.Random:
    """A generator seeded from ``rng``'s state without drawing from it: sampling is as
    deterministic as ``rng``, and never shifts the draws (retry jitter) of live requests."""
    twin = random.Random()
    twin.setstate(rng.getstate())
    return random.Random(twin.getrandbits(128))


class ShadowSender:
    def __init__(
        self,
        policy: Policy,
        deps: EngineDeps,
        outcomes: OutcomeSink,
        settings: ShadowSettings,
        rng: random.Random,
    ) -> None:
        self.policy = policy
        self.deps = deps  # the shadow's own: its breakers and retry jitter
        self.outcomes = outcomes
        self.settings = settings
        self.metrics = settings.metrics if settings.metrics is not None else ShadowMetrics()
        self.rules = {n: r.shadow for n, r in policy.routes.items() if r.shadow is not None}
        self.budgets = {
            name: DailyBudget(rule.max_usd_per_day * settings.budget_share, settings.wall_clock)
            for name, rule in self.rules.items()
        }
        self.judge_prompt = settings.judge_prompt or JudgePrompt.default()
        self._rng = rng
        self._queue: asyncio.Queue[Job] = asyncio.Queue(settings.queue_size)
        self._workers: list[asyncio.Task[None]] = []
        self._closed = False

    @classmethod
    def for_router(
        cls,
        policy: Policy,
        providers: Mapping[str, Provider],
        api_keys: Mapping[str, str | None],
        clock: Callable[[], float],
        rng: random.Random,
        outcomes: OutcomeSink,
        settings: ShadowSettings,
    ) -> ShadowSender:
        """A sender sharing the router's providers and keys, with breakers and a random
        generator of its own."""
        models = {m for rule in _rules(policy) for m in (*rule.models, rule.judge) if m}
        breakers = Breakers({m: policy.models[m].breaker for m in models}, clock)
        own = own_generator(rng)
        deps = EngineDeps(providers, api_keys, breakers, clock, rng=own)
        return cls(policy, deps, outcomes, settings, own)

    # -- the request path ---------------------------------------------------------------------

    def offer(
        self, decision: Decision, body: dict[str, Any], answer: str | None, record: RequestRecord
    ) -> None:
        """A successful request whose client has its answer: shadow it if sampled."""
        rule = self.rules.get(decision.route)
        if rule is None or not answer or decision.strategy == "direct":
            return
        if self._rng.random() >= rule.sample:
            return
        if self._closed:
            self._skip_all(decision.route, rule, "shutdown")
            return
        route = self.policy.routes[decision.route]
        messages = body.get("messages")
        job = Job(
            route=decision.route,
            rule=rule,
            signal=route.confidence,
            # The caller may reuse its body (a chat history grows): keep today's messages.
            body={**body, "messages": list(messages) if isinstance(messages, list) else messages},
            answer=answer,
            request_id=record.request_id,
            task=record.task,
            baseline_model=record.final_model,
            baseline_version=record.final_reported_model,
            prompt_tokens=decision.prompt_tokens,
            output_tokens=decision.output_tokens,
        )
        try:
            self._queue.put_nowait(job)
        except asyncio.QueueFull:
            self._skip_all(decision.route, rule, "queue_full")
            return
        self.metrics.pending.inc()
        if not self._workers:
            loop = asyncio.get_running_loop()
            self._workers = [
                loop.create_task(self._work(), name=f"modelroute-shadow-{i}")
                for i in range(self.settings.workers)
            ]

    def _skip_all(self, route: str, rule: ShadowRule, reason: str) -> None:
        for model in rule.models:
            self.metrics.skip(route, model, reason)

    # -- the workers ----------------------------------------------------------------------------

    async def _work(self) -> None:
        queue = self._queue
        while True:
            job = await queue.get()
            try:
                await self._run(job)
            except Exception:  # a bug here must never reach a client, nor stop the worker
                log.exception("shadow comparison for request %s failed", job.request_id)
            finally:
                queue.task_done()
                self.metrics.pending.dec()

    async def _run(self, job: Job) -> None:
        found = [await self._shadow(job, name) for name in job.rule.models]
        outcomes = [outcome for outcome in found if outcome is not None]
        if not outcomes:
            return
        try:
            await self.outcomes.add_outcomes(outcomes)
        except Exception as exc:  # the store is down: the comparison is lost, and counted
            log.warning("shadow outcomes of request %s not stored: %s", job.request_id, exc)
            for outcome in outcomes:
                self.metrics.fail(job.route, outcome.model, "store")
            return
        for outcome in outcomes:
            self.metrics.stored(job.route, outcome.model)

    async def _shadow(self, job: Job, name: str) -> Outcome | None:
        """One shadow model's answer to the job, compared; ``None`` when skipped or failed."""
        model = self.policy.models[name]
        if job.prompt_tokens + job.output_tokens > model.context_window:
            self.metrics.skip(job.route, name, "context")
            return None
        budget = self.budgets[job.route]
        reservation = budget.reserve(self._estimate(job, model))
        if reservation is None:
            self.metrics.skip(job.route, name, "budget")
            return None
        spent = 0.0
        try:
            sent = await ask_directly(self.deps, self.policy, name, self._body(job, model))
            if not sent.reached_upstream:  # the shadow's own breaker is open
                self.metrics.skip(job.route, name, CIRCUIT_OPEN)
                return None
            self.metrics.sent(job.route, name)
            spent = sent.cost_usd
            self.metrics.spend(job.route, name, spent)
            if sent.completion is None:
                self.metrics.fail(job.route, name, sent.failure or "unknown")
                return None
            verdict = await self._compare(job, sent.completion.content or "")
            spent += verdict.cost_usd
            if verdict.score is None:
                self.metrics.fail(job.route, name, f"judge_{verdict.failure}")
                return None
            return self._outcome(job, name, sent, verdict)
        except asyncio.CancelledError:  # closing, with this call out
            self.metrics.sent(job.route, name)
            self.metrics.fail(job.route, name, "cancelled")
            raise
        finally:
            self._settle(budget, reservation, spent)

    @staticmethod
    def _settle(budget: DailyBudget, reservation: Reservation, spent: float) -> None:
        if spent > 0:
            budget.settle(reservation, spent)
        else:
            budget.release(reservation)

    def _estimate(self, job: Job, model: Model) -> float:
        """The planner's estimate for the shadow call, and for judging it."""
        usd = model.prices.estimate(job.prompt_tokens, job.output_tokens)
        if job.rule.judge is not None:
            judge = self.policy.models[job.rule.judge]
            prompt = job.prompt_tokens + 2 * job.output_tokens + JUDGE_OVERHEAD_TOKENS
            usd += judge.prices.estimate(prompt, JUDGE_OUTPUT_TOKENS)
        return usd

    @staticmethod
    def _body(job: Job, model: Model) -> dict[str, Any]:
        body = {**job.body, "stream": False}
        signal = job.signal
        if signal is not None and needs_logprobs(signal) and "logprobs" in model.capabilities:
            body = with_logprobs(body)  # to note the answer's confidence, as a cascade would
        return body

    async def _compare(self, job: Job, answer: str) -> Verdict:
        judge = job.rule.judge
        if judge is None:
            return Verdict(agreement(answer, job.answer))
        request = judge_request(self.judge_prompt, job.body.get("messages"), job.answer, answer)
        sent = await ask_directly(self.deps, self.policy, judge, request)
        self.metrics.spend(job.route, judge, sent.cost_usd)
        if sent.completion is None:
            return Verdict(None, sent.cost_usd, sent.failure)
        try:
            score, evidence = judge_score(sent.completion.content or "")
        except GradingError:
            return Verdict(None, sent.cost_usd, "verdict")
        detail = {"judge_version": sent.reported_model, "judge_cost_usd": sent.cost_usd}
        return Verdict(score, sent.cost_usd, None, {**detail, **evidence})

    def _outcome(self, job: Job, name: str, sent: Sent, verdict: Verdict) -> Outcome:
        assert sent.completion is not None and verdict.score is not None
        detail = {"baseline_model": job.baseline_model, "baseline_version": job.baseline_version}
        return Outcome(
            source=OutcomeSource.SHADOW,
            grader=job.rule.grader,
            score=min(max(verdict.score, 0.0), 1.0),
            model=name,
            created_at=self.settings.wall_clock(),
            prompt_id=job.request_id,
            prompt_hash=prompt_hash(job.body.get("messages")),
            task=job.task,
            route=job.route,
            reported_model=sent.reported_model,
            fingerprint=sent.completion.fingerprint,
            cost_usd=sent.cost_usd,
            latency_ms=sent.latency_ms,
            request_id=job.request_id,
            confidences=self._confidences(job, self.policy.models[name], sent),
            detail={**detail, **(verdict.detail or {})},
        )

    @staticmethod
    def _confidences(job: Job, model: Model, sent: Sent) -> dict[str, float]:
        """The shadow answer's confidence under the route's signal, for calibration; none
        when the model could not be asked for the logprobs it needs (or the signal is a
        verifier, which takes a call of its own)."""
        signal = job.signal
        if signal is None or signal.signal == "verifier" or sent.completion is None:
            return {}
        if needs_logprobs(signal) and "logprobs" not in model.capabilities:
            return {}
        return {signal.signal: confidence(signal, sent.completion)}

    # -- closing --------------------------------------------------------------------------------

    async def aclose(self) -> None:
        """Let the queued comparisons finish, for at most ``drain_s``; what is still queued
        then is dropped (``shutdown``), what is in flight cancelled (``cancelled``)."""
        self._closed = True
        if self._workers:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._queue.join(), self.settings.drain_s)
            for task in self._workers:
                task.cancel()
            await asyncio.gather(*self._workers, return_exceptions=True)
            self._workers = []
        while not self._queue.empty():
            job = self._queue.get_nowait()
            self._queue.task_done()
            self._skip_all(job.route, job.rule, "shutdown")
        self.metrics.pending.set(0)


def _rules(policy: Policy) -> list[ShadowRule]:
    return [route.shadow for route in policy.routes.values() if route.shadow is not None]


def shadowed(policy: Policy) -> bool:
    """Whether any route of ``policy`` declares a shadow."""
    return bool(_rules(policy))
