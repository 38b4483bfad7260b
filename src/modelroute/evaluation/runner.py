"""Sending a dataset through the engine: each prompt to each model, graded, kept as outcomes.

Each model is called by name (routing does not pick) under the evaluated route's retries and
timeouts (``policy_view``). Pairs already scored in this run are skipped, so a run stopped
half-way resumes where it stopped. Spend is counted as answers arrive (the models', the
judge's and the verifier's calls) and no new request starts once it reaches ``max_cost``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from modelroute.errors import ModelrouteError
from modelroute.evaluation.confidences import Signals, wants_logprobs, with_logprobs
from modelroute.evaluation.dataset import Dataset, EvalItem
from modelroute.evaluation.report import Tally
from modelroute.features import TokenCounts, request_context
from modelroute.grading import Graders, GradingError
from modelroute.learned.decide import prompt_text
from modelroute.outcomes import Outcome, OutcomeSource
from modelroute.planner import plan
from modelroute.policy.compiled import Route

if TYPE_CHECKING:
    from modelroute.records.stores.base import Store
    from modelroute.router import Router

_ANSWER_CHARS = 500  # of each answer kept as evidence on its outcome
_PROMPT_CHARS = 4000  # of the prompt's last user message kept on its outcome
_ID_CHUNK = 10_000
_EXAMPLES = 5  # failure messages kept per kind, for the report


@dataclass(frozen=True, slots=True)
class Pair:
    item: EvalItem
    model: str
    outcome_id: str


@dataclass(slots=True)
class Progress:
    done: int
    total: int
    spent_usd: float


@dataclass(slots=True)
class CostEstimate:
    usd: float = 0.0
    requests: int = 0
    per_model: dict[str, float] = field(default_factory=dict)
    infeasible: int = 0  # pairs the planner would refuse (context too small, ...)


@dataclass(slots=True)
class RunSummary:
    pairs: int = 0  # prompt × model pairs in the dataset
    resumed: int = 0  # already scored in this run: skipped
    scored: int = 0
    failed: int = 0
    ungraded: int = 0
    spent_usd: float = 0.0
    stopped_at_max_cost: bool = False
    examples: dict[str, list[str]] = field(default_factory=dict)  # kind -> messages

    def example(self, kind: str, message: str) -> None:
        kept = self.examples.setdefault(kind, [])
        if len(kept) < _EXAMPLES:
            kept.append(message)


def pair_id(run: str, route: str, item: EvalItem, model: str, grader: str) -> str:
    """The outcome id a pair's score is stored under (``Outcome.outcome_id``)."""
    return Outcome(
        source=OutcomeSource.EVAL,
        grader=grader,
        score=0.0,
        model=model,
        created_at=0.0,
        prompt_id=item.id,
        prompt_hash=item.prompt_hash,
        route=route,
        run=run,
    ).outcome_id


class Evaluation:
    def __init__(
        self,
        router: Router,
        route: Route,
        models: Sequence[str],
        dataset: Dataset,
        graders: Graders,
        store: Store,
        run: str,
        *,
        concurrency: int = 4,
        max_cost_usd: float | None = None,
        batch: int = 100,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.router = router
        self.route = route
        self.models = list(models)
        self.dataset = dataset
        self.graders = graders
        self.store = store
        self.run_name = run
        self.concurrency = concurrency
        self.max_cost_usd = max_cost_usd
        self.batch = batch
        self.clock = clock
        self.signals = Signals(router, route.confidence)
        self.tally = Tally()  # this session's failures (scores are read back from the store)
        self.summary = RunSummary()
        self._pending: list[Outcome] = []

    @property
    def graders_call_models(self) -> bool:
        """Whether grading or confidence costs model calls of its own (not estimated)."""
        rule = self.route.confidence
        judged = any(
            self.graders.get(i.grader).name.startswith("judge:") for i in self.dataset.items
        )
        return judged or (rule is not None and rule.signal == "verifier")

    def pairs(self) -> Iterator[Pair]:
        for item in self.dataset.items:
            grader = self.graders.get(item.grader).name
            for model in self.models:
                yield Pair(
                    item, model, pair_id(self.run_name, self.route.name, item, model, grader)
                )

    async def pending(self) -> list[Pair]:
        """The pairs not yet scored in this run."""
        pairs = list(self.pairs())
        done: set[str] = set()
        for start in range(0, len(pairs), _ID_CHUNK):
            chunk = pairs[start : start + _ID_CHUNK]
            done |= await self.store.outcome_ids([p.outcome_id for p in chunk])
        self.summary.pairs = len(pairs)
        self.summary.resumed = sum(p.outcome_id in done for p in pairs)
        return [p for p in pairs if p.outcome_id not in done]

    def body(self, item: EvalItem, model: str) -> dict[str, Any]:
        body: dict[str, Any] = {"model": model, "messages": item.messages}
        models = self.router.policy.models
        # Asking for logprobs rules out every model that cannot give them, fallbacks too.
        answering = [model, *self.router.policy.direct[model].fallbacks]
        if all(wants_logprobs(self.route.confidence, models[name]) for name in answering):
            body = with_logprobs(body)
        return body

    def estimate(self, pairs: Sequence[Pair]) -> CostEstimate:
        """What the pairs will cost, by the planner's own token estimate and prices (the
        answer's length is the route's ``output_tokens``); judge and verifier calls are not
        included."""
        counts = TokenCounts()
        found = CostEstimate()
        for pair in pairs:
            ctx = request_context(self.body(pair.item, pair.model), None, counts)
            decision = plan(ctx, self.router.policy)
            if not decision.tiers:
                found.infeasible += 1
                continue
            cost = decision.tiers[0][0].estimate.cost_usd
            found.usd += cost
            found.requests += 1
            found.per_model[pair.model] = found.per_model.get(pair.model, 0.0) + cost
        return found

    async def run(
        self, pairs: Sequence[Pair], progress: Callable[[Progress], None] | None = None
    ) -> RunSummary:
        queue = iter(pairs)
        done = 0

        async def worker() -> None:
            nonlocal done
            for pair in queue:  # one iterator shared by every worker: each pair once
                if self._over_budget():
                    self.summary.stopped_at_max_cost = True
                    return
                await self._one(pair)
                done += 1
                if progress is not None:
                    progress(Progress(done, len(pairs), self.summary.spent_usd))

        try:
            await asyncio.gather(*(worker() for _ in range(max(1, self.concurrency))))
        finally:
            await self._flush()
        return self.summary

    def _over_budget(self) -> bool:
        return self.max_cost_usd is not None and self.summary.spent_usd >= self.max_cost_usd

    def _spend(self, usd: float | None) -> None:
        self.summary.spent_usd += usd or 0.0

    async def _one(self, pair: Pair) -> None:
        item, model = pair.item, pair.model
        body = self.body(item, model)
        try:
            result = await self.router.chat(body)
        except ModelrouteError as exc:
            self._spend(getattr(exc.record, "cost_usd", None))
            self.summary.failed += 1
            self.summary.example("failed", f"{model}: {exc}")
            self.tally.failed(model, item.task)
            return
        record, completion = result.record, result.completion
        self._spend(record.cost_usd)
        answer = completion.content or ""
        grader = self.graders.get(item.grader)
        try:
            grade = await grader.grade(answer, item.reference, item.messages)
        except GradingError as exc:
            self._spend(exc.detail.get("judge_cost_usd"))
            self.summary.ungraded += 1
            self.summary.example("ungraded", f"{model} on {item.id or item.line}: {exc}")
            self.tally.ungraded(model, item.task)
            return
        self._spend(grade.cost_usd)
        before = self.signals.spent_usd
        confidences = await self.signals.score(body, completion)
        self._spend(self.signals.spent_usd - before)
        detail = {**grade.detail, "answer": answer[:_ANSWER_CHARS], "request": record.request_id}
        # What a learned route reads of the prompt, for training on this store (``train``)
        detail["prompt"] = prompt_text({"messages": item.messages})[:_PROMPT_CHARS]
        if record.final_model and record.final_model != model:
            detail["requested_model"] = model  # a fallback answered (--fallbacks)
        self._pending.append(
            Outcome(
                source=OutcomeSource.EVAL,
                grader=grader.name,
                score=grade.score,
                model=record.final_model or model,
                created_at=self.clock(),
                prompt_id=item.id,
                prompt_hash=item.prompt_hash,
                task=item.task,
                route=self.route.name,
                reported_model=completion.model_reported,
                fingerprint=completion.fingerprint,
                cost_usd=record.cost_usd,
                latency_ms=record.latency_ms,
                run=self.run_name,
                confidences=confidences,
                detail=detail,
            )
        )
        self.summary.scored += 1
        if len(self._pending) >= self.batch:
            await self._flush()

    async def _flush(self) -> None:
        batch, self._pending = self._pending, []
        if batch:
            await self.store.add_outcomes(batch)
