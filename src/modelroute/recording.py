"""Building a request's record from values the router already holds, and the response headers
that summarise it. Kept out of ``router/`` so the request path reads as a short story."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from operator import itemgetter
from typing import Any

from modelroute.engine import Answer, Execution, OpenStream, StreamEnd
from modelroute.errors import (
    InfeasibleError,
    ModelrouteError,
    NotBridgeableError,
    UnknownRouteError,
)
from modelroute.identity import ClientIdentity, key_id_of
from modelroute.planner import Decision, RequestContext, StatsSnapshot
from modelroute.policy import Policy
from modelroute.records.planner_input import PlannerInput
from modelroute.records.record import (
    ANSWERED,
    Attempt,
    AttemptResult,
    DecisionView,
    RequestRecord,
    RequestStatus,
)
from modelroute.request_fields import THINKING_BLOCKS
from modelroute.statuses import error_status, failed_status
from modelroute.types import Completion, StreamChunk, Usage

CONTENT_LIMIT = 2048
_MODEL = itemgetter(0)  # a rejection's model


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


def presented_key(headers: Mapping[str, str] | None) -> str | None:
    """The key a client presented: ``Authorization: Bearer KEY`` (OpenAI's SDK) or
    ``x-api-key: KEY`` (Anthropic's), so one key is one caller at either door."""
    headers = headers or {}
    auth = headers.get("authorization") or ""
    scheme, _, rest = auth.partition(" ")
    key = rest.strip() if scheme.lower() == "bearer" else auth.strip()
    return key or headers.get("x-api-key") or None


def client_key_id(key: str | None) -> str | None:
    """What a record keeps of a client key: a hash, never the key (``key_id_of``)."""
    return None if key is None else key_id_of(key)


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
        self.decision: Decision | None = None
        self.record = RequestRecord(
            request_id=new_id(),
            started_at=time.time(),
            policy_hash=policy.hash,
            policy_version=policy.version,
            endpoint=endpoint,
            streamed=streamed,
        )

    def client(
        self, headers: Mapping[str, str] | None, identity: ClientIdentity | None = None
    ) -> None:
        """The caller: its authenticated identity, or else the hash of the key it presented."""
        if identity is not None:
            self.record.client_key_id = identity.key_id
        else:
            self.record.client_key_id = client_key_id(presented_key(headers))

    def context(self, ctx: RequestContext, body: Mapping[str, Any], stats: StatsSnapshot) -> None:
        """``stats``: the snapshot the planner is about to be given (kept by reference; the
        record's sink narrows it to what the planner read, off the request path)."""
        self.record.task = ctx.task
        self.record.metadata = dict(ctx.metadata)
        text = _prompt_text(body)
        self.record.prompt = _content(text, self.content)
        if ctx.task is None and self.content in ("off", "hash"):
            # the store derives the template's task key from it, then lets it go
            self.record.template_source = text[:CONTENT_LIMIT]
        self.record.planner_input = PlannerInput(ctx, stats)

    def decided(self, decision: Decision) -> None:
        self.decision = decision
        self.record.route = decision.route
        self.record.selected_by = decision.selected_by
        self.record.decision = DecisionView(decision)  # its dictionary is built when read
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
            not a.price_known for a in attempts if a.outcome in ANSWERED or a.usage is not None
        )
        r.latency_ms = self._elapsed_ms()

    def finish_error(self, err: ModelrouteError) -> None:
        r = self.record
        if isinstance(err, InfeasibleError):
            self.decided(err.decision)
            # A request only the Responses API can serve, with no model that serves it:
            # the request is what has to change.
            bridge = isinstance(err, NotBridgeableError)
            r.status = RequestStatus.CLIENT_ERROR if bridge else RequestStatus.INFEASIBLE
        elif isinstance(err, UnknownRouteError):
            r.status = RequestStatus.REJECTED
        else:
            r.status = RequestStatus.CLIENT_ERROR
        r.http_status = error_status(err)  # what the gateway answers, library calls alike
        r.error = str(err)
        r.latency_ms = self._elapsed_ms()

    def finish(self, execution: Execution, completion: Completion | None = None) -> None:
        """The record of an execution that ended in an answer (``completion`` as the client
        gets it) or in a failure; a stream's is finished by ``finish_stream``."""
        self._totals(execution.attempts)
        r = self.record
        r.escalations = execution.escalations
        failure, answer = execution.failure, execution.answer
        if failure is not None:
            r.http_status = failed_status(failure.cls)
            r.status, r.failure, r.error = RequestStatus.FAILED, failure.cls.value, failure.message
            return
        assert answer is not None and completion is not None
        r.final_model = answer.model.name
        r.final_reported_model = completion.model_reported
        r.final_fingerprint = completion.fingerprint
        r.confidence = answer.confidence
        r.answer = _content(completion.content, self.content)
        r.ttft_ms = r.latency_ms

    def finish_cached(self, model: str, saved_usd: float, completion: Completion) -> None:
        """A request answered from the response cache: no attempt, no cost, what it saved."""
        r = self.record
        r.latency_ms = self._elapsed_ms()
        r.final_model = model
        r.final_reported_model = completion.model_reported
        r.final_fingerprint = completion.fingerprint
        r.answer = _content(completion.content, self.content)
        r.ttft_ms = r.latency_ms
        r.cache_hit, r.cache_saved_usd = True, saved_usd

    def finish_cancelled(self, attempts: list[Attempt]) -> None:
        self._totals(attempts)
        self.record.status, self.record.error = RequestStatus.CANCELLED, "the client went away"

    def headers(
        self, opened: OpenStream | Answer | None = None, attempts: list[Attempt] | None = None
    ) -> dict[str, str]:
        """``attempts``: the attempts so far, for a stream whose record is finished later."""
        r = self.record
        model = r.final_model
        reported = r.final_reported_model
        if isinstance(opened, OpenStream):
            model, reported = opened.model.name, opened.attempt.reported_model
        if attempts is None:
            attempts = r.attempts
        escalations = sum(1 for a in attempts if a.outcome == AttemptResult.LOW_CONFIDENCE)
        headers = {
            "x-modelroute-request-id": r.request_id,
            "x-modelroute-route": r.route or "",
            "x-modelroute-model": model or "",
            "x-modelroute-model-version": reported or "",
            "x-modelroute-attempts": str(
                sum(1 for a in attempts if a.outcome != AttemptResult.SKIPPED) or 1
            ),
            "x-modelroute-reason": _reason(self.decision, escalations),
        }
        affinity = self.decision.affinity if self.decision is not None else None
        if affinity is not None:  # session affinity: initialize, retain or switch
            headers["x-modelroute-affinity"] = affinity.action
        return headers

    def finish_stream(self, end: StreamEnd, execution: Execution) -> None:
        """A relayed stream's record, however it ended (the engine kept its attempt)."""
        attempts = execution.attempts
        self._totals(attempts)
        r = self.record
        attempt = end.opened.attempt
        r.final_model = end.opened.model.name
        r.final_reported_model = attempt.reported_model
        r.final_fingerprint = attempt.fingerprint
        r.ttft_ms = attempt.ttft_ms
        r.answer = _content(end.text, self.content)
        if end.failure is not None:
            r.status = RequestStatus.STREAM_ERROR
            r.failure, r.error = end.failure.cls.value, end.failure.message
        elif end.gone:
            r.status, r.error = RequestStatus.CANCELLED, "the client went away"
        r.escalations = execution.escalations


def _reason(decision: Decision | None, escalations: int) -> str:
    if decision is None:  # no route was found
        return "None/None" + (f"; escalated {escalations}" if escalations else "")
    text = f"{decision.strategy}/{decision.objective}"
    rejections = decision.rejections
    if rejections:
        text += f"; {len(set(map(_MODEL, rejections)))} rejected"
    if decision.relaxed:
        text += f"; relaxed {decision.relaxed}"
    if escalations:
        text += f"; escalated {escalations}"
    return text


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
    first = (body.get("choices") or [{}])[0]
    message = first.get("message") or {}
    delta: dict[str, Any] = {"role": "assistant", "content": message.get("content") or ""}
    if message.get("tool_calls"):
        delta["tool_calls"] = [{**tc, "index": i} for i, tc in enumerate(message["tool_calls"])]
    if message.get(THINKING_BLOCKS):
        blocks = message[THINKING_BLOCKS]
        delta[THINKING_BLOCKS] = [{**block, "index": i} for i, block in enumerate(blocks)]
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    if first.get("logprobs"):  # the client asked for them (else the client view has none)
        choice["logprobs"] = first["logprobs"]
    yield StreamChunk.from_openai({**base, "choices": [choice]})
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
