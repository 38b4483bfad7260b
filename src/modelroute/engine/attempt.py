"""One upstream call: run it under the time left, classify a failure once, keep the record."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from modelroute.engine.deadline import Deadline
from modelroute.engine.outgoing import outgoing_body
from modelroute.failures import Failure, FailureClass, classify
from modelroute.policy.compiled import Model
from modelroute.pricing import cost_of
from modelroute.providers.base import Provider
from modelroute.records.record import Attempt, AttemptResult
from modelroute.state.circuits import CircuitState
from modelroute.types import Completion, StreamChunk, UpstreamError


@dataclass(slots=True)
class EngineDeps:
    """What executing a decision needs from the outside world, injected."""

    providers: Mapping[str, Provider]  # by provider kind
    api_keys: Mapping[str, str | None]  # by model name
    breakers: CircuitState
    clock: Callable[[], float]  # monotonic seconds
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    rng: random.Random = field(default_factory=random.Random)


def timeout_failure(seconds: float) -> Failure:
    return Failure(FailureClass.TIMEOUT, 0, f"no answer within {seconds * 1000:.0f} ms")


def note_failure(deps: EngineDeps, model: Model, attempt: Attempt, failure: Failure) -> None:
    attempt.outcome = AttemptResult.FAILED
    attempt.failure = failure.cls.value
    attempt.status = failure.status or None
    attempt.message = failure.message[:500]
    attempt.retry_after_s = failure.retry_after_s
    deps.breakers.failure(model.name, failure.cls, failure.retry_after_s)


def note_success(deps: EngineDeps, model: Model, attempt: Attempt, completion: Completion) -> None:
    attempt.reported_model = completion.model_reported
    attempt.fingerprint = completion.fingerprint
    account(attempt, model, completion)
    deps.breakers.success(model.name)


def account(attempt: Attempt, model: Model, completion: Completion) -> None:
    attempt.usage = completion.usage
    cost = cost_of(completion.usage, model.prices)
    attempt.cost_usd, attempt.price_known = cost.usd, cost.known


async def call(
    deps: EngineDeps, body: dict[str, Any], model: Model, attempt: Attempt, timeout_s: float
) -> tuple[Completion | None, Failure | None]:
    """A non-streamed call. An empty answer is a failure, never a success."""
    provider = deps.providers[model.provider]
    start = deps.clock()
    try:
        async with Deadline(timeout_s):
            completion = await provider.complete(
                model, outgoing_body(model, body), deps.api_keys.get(model.name)
            )
    except TimeoutError:
        failure = timeout_failure(timeout_s)
    except UpstreamError as exc:
        failure = classify(exc)
    else:
        attempt.latency_ms = (deps.clock() - start) * 1000
        if completion.is_empty:
            failure = Failure(FailureClass.EMPTY_RESPONSE, 200, "the answer has no content")
            account(attempt, model, completion)
        else:
            note_success(deps, model, attempt, completion)
            return completion, None
    attempt.latency_ms = (deps.clock() - start) * 1000
    note_failure(deps, model, attempt, failure)
    return None, failure


@dataclass(slots=True)
class OpenStream:
    """A stream that has produced its first output: safe to commit to the client."""

    model: Model
    attempt: Attempt
    buffered: list[StreamChunk]
    rest: AsyncIterator[StreamChunk]
    started: float  # clock at the call

    async def aclose(self) -> None:
        """Give the stream up unread (it lost a hedge race): its upstream connection is
        released now, not whenever the garbage collector finalises the generator."""
        await _close(self.rest)


async def open_stream(
    deps: EngineDeps, body: dict[str, Any], model: Model, attempt: Attempt, timeout_s: float
) -> tuple[OpenStream | None, Failure | None]:
    """Start a stream and wait (within ``timeout_s``) for its first content or tool-call
    delta. Until then nothing has reached the client, so any failure can still fall back."""
    provider = deps.providers[model.provider]
    start = deps.clock()
    chunks = provider.stream(model, outgoing_body(model, body), deps.api_keys.get(model.name))
    buffered: list[StreamChunk] = []
    try:
        async with Deadline(timeout_s):
            async for chunk in chunks:
                buffered.append(chunk)
                if chunk.has_output:
                    attempt.ttft_ms = (deps.clock() - start) * 1000
                    attempt.reported_model = chunk.data.get("model")
                    attempt.fingerprint = chunk.data.get("system_fingerprint")
                    # The model answered: that settles a half-open probe now, not when (or
                    # whether) the caller reads the stream to its end.
                    deps.breakers.success(model.name)
                    return OpenStream(model, attempt, buffered, chunks, start), None
        failure = Failure(FailureClass.EMPTY_RESPONSE, 200, "the stream ended with no content")
    except TimeoutError:
        failure = timeout_failure(timeout_s)
    except UpstreamError as exc:
        failure = classify(exc)
    except asyncio.CancelledError:
        # Cancelled by a hedge it lost, or by a client that left: close the upstream here
        # rather than leave it to the generator's finaliser.
        await _close(chunks)
        raise
    await _close(chunks)
    attempt.latency_ms = (deps.clock() - start) * 1000
    note_failure(deps, model, attempt, failure)
    return None, failure


async def _close(chunks: AsyncIterator[StreamChunk]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(UpstreamError, RuntimeError):
            await aclose()
