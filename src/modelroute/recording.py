"""Building a request's record from values the router already holds, and the response headers
that summarise it. Kept out of ``router.py`` so the request path reads as a short story."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from modelroute.engine import AllAttemptsFailed, Answer, OpenStream
from modelroute.errors import InfeasibleError, ModelrouteError, UnknownRouteError
from modelroute.failures import Failure, FailureClass, classify
from modelroute.planner import Decision, RequestContext, StatsSnapshot
from modelroute.policy import Policy
from modelroute.pricing import cost_of
from modelroute.records.planner_input import PlannerInput
from modelroute.records.record import Attempt, RequestRecord
from modelroute.types import Completion, StreamChunk, UpstreamError, Usage

CONTENT_LIMIT = 2048


def _content(text: str | None, mode: str) -> str | None:
    if text is None or mode == "off":
        return None
    if mode == "hash":
        return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
    if mode == "truncated" and len(text) > CONTENT_LIMIT:
        return text[:CONTENT_LIMIT]
    return text


def _prompt_text(body: Mapping[str, Any]) -> str:
    parts = []
    for message in body.get("messages") or []:
        if isinstance(message, dict):
            content = message.get("content")
            if isinstance(content, str):
                parts.append(f"{message.get('role')}: {content}")
    return "\n".join(parts)


def _sum_usage(attempts: list[Attempt]) -> Usage | None:
    used = [a.usage for a in attempts if a.usage is not None]
    if len(used) <= 1:  # the usual case: one answered attempt, nothing to add up
        return used[0] if used else None
    return Usage(
        input_tokens=sum(u.input_tokens for u in used),
        output_tokens=sum(u.output_tokens for u in used),
        cached_input_tokens=sum(u.cached_input_tokens for u in used),
        cache_write_tokens=sum(u.cache_write_tokens for u in used),
        reasoning_tokens=sum(u.reasoning_tokens for u in used),
    )


class RecordBuilder:
    def __init__(
        self,
        policy: Policy,
        endpoint: str,
        streamed: bool,
        clock: Callable[[], float],
        content: str,
        new_id: Callable[[], str],
    ) -> None:
        self.policy = policy
        self.clock = clock
        self.start = clock()
        self.content = content
        self.record = RequestRecord(
            request_id=new_id(),
            started_at=time.time(),
            policy_hash=policy.hash,
            policy_version=policy.version,
            endpoint=endpoint,
            streamed=streamed,
        )

    def client(self, headers: Mapping[str, str] | None) -> None:
        auth = (headers or {}).get("authorization") or (headers or {}).get("x-api-key")
        if auth:
            self.record.client_key_id = hashlib.sha256(auth.encode()).hexdigest()[:16]

    def context(self, ctx: RequestContext, body: Mapping[str, Any], stats: StatsSnapshot) -> None:
        """``stats``: the snapshot the planner is about to be given (kept by reference; the
        record's sink narrows it to what the planner read, off the request path)."""
        self.record.task = ctx.task
        self.record.metadata = dict(ctx.metadata)
        self.record.prompt = _content(_prompt_text(body), self.content)
        self.record.planner_input = PlannerInput(ctx, stats)

    def decided(self, decision: Decision) -> None:
        self.record.route = decision.route
        self.record.selected_by = decision.selected_by
        self.record.decision = decision.to_dict()
        if self.record.planner_input is not None:
            self.record.planner_input.decision = decision

    def _elapsed_ms(self) -> float:
        return (self.clock() - self.start) * 1000

    def _totals(self, attempts: list[Attempt]) -> None:
        r = self.record
        r.attempts = attempts
        r.usage = _sum_usage(attempts)
        r.cost_usd = sum(a.cost_usd or 0.0 for a in attempts)
        # An answered attempt whose usage could not be priced makes the total uncertain.
        r.price_unknown = any(
            not a.price_known
            for a in attempts
            if a.outcome in ("ok", "low_confidence") or a.usage is not None
        )
        r.latency_ms = self._elapsed_ms()

    def finish_error(self, err: ModelrouteError) -> None:
        r = self.record
        if isinstance(err, InfeasibleError):
            self.decided(err.decision)
            r.status, r.http_status = "infeasible", 422
        elif isinstance(err, UnknownRouteError):
            r.status, r.http_status = "rejected", 404
        else:
            r.status, r.http_status = "client_error", 400
        r.error = str(err)
        r.latency_ms = self._elapsed_ms()

    def finish_failed(
        self,
        err: AllAttemptsFailed,
        attempts: list[Attempt],
        status_of: Callable[[Failure], int] | None = None,
    ) -> None:
        self._totals(attempts)
        r = self.record
        if status_of is not None:
            r.http_status = status_of(err.failure)
        r.status, r.failure, r.error = "failed", err.failure.cls.value, err.failure.message

    def finish_cancelled(self, attempts: list[Attempt]) -> None:
        self._totals(attempts)
        self.record.status, self.record.error = "cancelled", "the client went away"

    def finish_answer(
        self, answer: Answer, attempts: list[Attempt], completion: Completion
    ) -> None:
        self._totals(attempts)
        r = self.record
        r.final_model = answer.model.name
        r.final_reported_model = completion.model_reported
        r.final_fingerprint = completion.fingerprint
        r.confidence = answer.confidence
        r.escalations = answer.escalations
        r.answer = _content(completion.content, self.content)
        r.ttft_ms = r.latency_ms

    def headers(
        self, opened: OpenStream | Answer | None = None, attempts: list[Attempt] | None = None
    ) -> dict[str, str]:
        """``attempts``: the attempts so far, for a stream whose record is finished later."""
        r = self.record
        decision = r.decision or {}
        model = r.final_model
        reported = r.final_reported_model
        if isinstance(opened, OpenStream):
            model, reported = opened.model.name, opened.attempt.reported_model
        if attempts is None:
            attempts = r.attempts
        escalations = sum(1 for a in attempts if a.outcome == "low_confidence")
        return {
            "x-modelroute-request-id": r.request_id,
            "x-modelroute-route": r.route or "",
            "x-modelroute-model": model or "",
            "x-modelroute-model-version": reported or "",
            "x-modelroute-attempts": str(sum(1 for a in attempts if a.outcome != "skipped") or 1),
            "x-modelroute-reason": _reason(decision, escalations),
        }

    def relay(self, opened: OpenStream, attempts: list[Attempt]) -> StreamRelay:
        return StreamRelay(self, opened, attempts)


def _reason(decision: Mapping[str, Any], escalations: int) -> str:
    text = f"{decision.get('strategy')}/{decision.get('objective')}"
    rejected = len({r["model"] for r in decision.get("rejections", [])})
    if rejected:
        text += f"; {rejected} rejected"
    if decision.get("relaxed"):
        text += f"; relaxed {decision['relaxed']}"
    if escalations:
        text += f"; escalated {escalations}"
    return text


class StreamRelay:
    """Accumulates what a relayed stream carried, for its record."""

    def __init__(self, builder: RecordBuilder, opened: OpenStream, attempts: list[Attempt]) -> None:
        self.builder = builder
        self.opened = opened
        self.attempts = attempts
        self.text: list[str] = []
        self.usage: Usage | None = None

    def seen(self, chunk: StreamChunk) -> None:
        if chunk.content:
            self.text.append(chunk.content)
        if chunk.usage is not None:
            self.usage = chunk.usage

    def failure(self, exc: BaseException) -> tuple[str, str]:
        if isinstance(exc, UpstreamError):
            failure = classify(exc)
        else:
            failure = Failure(FailureClass.SERVER_ERROR, 0, f"{type(exc).__name__}: {exc}")
        return failure.cls.value, failure.message

    def close(self, failed: tuple[str, str] | None, gone: bool = False) -> None:
        """``failed``: (failure class, message) of a stream that broke; ``gone``: the client
        left before the end."""
        opened, attempt = self.opened, self.opened.attempt
        b = self.builder
        attempt.latency_ms = (b.clock() - opened.started) * 1000
        attempt.usage = self.usage
        cost = cost_of(self.usage, opened.model.prices)
        attempt.cost_usd, attempt.price_known = cost.usd, cost.known
        b._totals(self.attempts)
        r = b.record
        r.final_model = opened.model.name
        r.final_reported_model = attempt.reported_model
        r.final_fingerprint = attempt.fingerprint
        r.ttft_ms = attempt.ttft_ms
        r.answer = _content("".join(self.text), b.content)
        if failed is not None:
            attempt.outcome, attempt.failure, attempt.message = "failed", failed[0], failed[1]
            r.status, r.failure, r.error = "stream_error", failed[0], failed[1]
        elif gone:
            r.status, r.error = "cancelled", "the client went away"
        r.escalations = sum(1 for a in self.attempts if a.outcome == "low_confidence")


async def replay_chunks(completion: Completion, include_usage: bool) -> AsyncIterator[StreamChunk]:
    """A finished answer as OpenAI stream chunks (for a cascade answer accepted early)."""
    body = completion.body
    base = {
        "id": body.get("id", ""),
        "object": "chat.completion.chunk",
        "created": body.get("created", 0),
        "model": body.get("model", ""),
        "system_fingerprint": body.get("system_fingerprint"),
    }
    message = ((body.get("choices") or [{}])[0]).get("message") or {}
    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{**tc, "index": i} for i, tc in enumerate(message["tool_calls"])]
    yield StreamChunk.from_openai(
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
    )
    yield StreamChunk.from_openai(
        {
            **base,
            "choices": [
                {"index": 0, "delta": {}, "finish_reason": completion.finish_reason or "stop"}
            ],
        }
    )
    if include_usage and completion.usage is not None:
        yield StreamChunk.from_openai(
            {**base, "choices": [], "usage": completion.usage.to_openai()}
        )
