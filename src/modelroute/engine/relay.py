"""A stream's life after its first byte reached the client: relayed chunk by chunk under the
route's idle limit. From here a failure can no longer fall back; it is classified once, counted
against the model's breaker (its success was counted at the first byte), kept on the attempt,
and ends the stream with ``StreamFailed``. However the relay ends (done, broken, the client
gone, or never read at all) ``on_end`` is called exactly once, with a ``StreamEnd``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from modelroute.engine.attempt import EngineDeps, OpenStream
from modelroute.engine.idle import IdleLimit
from modelroute.errors import ModelrouteError
from modelroute.failures import Failure, FailureClass, classify
from modelroute.pricing import cost_of
from modelroute.records.record import AttemptResult
from modelroute.types import StreamChunk, UpstreamError, Usage


class StreamFailed(ModelrouteError):
    """A stream failed after its first byte reached the client; it ends with an error event."""

    def __init__(self, failure: Failure) -> None:
        self.failure = failure
        self.failure_class = failure.cls.value
        super().__init__(failure.message)


@dataclass(slots=True)
class StreamEnd:
    """How a relayed stream ended: ``failure`` when it broke, ``gone`` when the client left
    first; ``text`` is what it carried."""

    opened: OpenStream
    text: str
    failure: Failure | None = None
    gone: bool = False


class Relay:
    """One open stream's relay. ``chunks()`` is iterated once; ``abandon()`` ends a stream
    dropped unread (its provider stream is closed by the loop's async-generator finaliser)."""

    __slots__ = ("deps", "idle_s", "on_end", "opened", "started", "wants_usage")

    def __init__(
        self,
        deps: EngineDeps,
        opened: OpenStream,
        idle_s: float,
        wants_usage: bool,
        on_end: Callable[[StreamEnd], None],
    ) -> None:
        self.deps = deps
        self.opened = opened
        self.idle_s = idle_s  # the longest upstream silence accepted
        self.wants_usage = wants_usage
        self.on_end = on_end
        self.started = False

    def abandon(self) -> None:
        if not self.started:
            self.started = True
            self._end([], None, None, gone=True)

    async def chunks(self) -> AsyncIterator[StreamChunk]:
        self.started = True
        opened, wants_usage = self.opened, self.wants_usage
        text: list[str] = []
        usage: Usage | None = None
        failure: Failure | None = None
        gone = False
        limit = IdleLimit(self.idle_s)
        try:
            for chunk in opened.buffered:
                if chunk.content:
                    text.append(chunk.content)
                if chunk.usage is not None:
                    usage = chunk.usage
                yield chunk if wants_usage else _usage_as_asked(chunk)
            iterator = opened.rest.__aiter__()
            while True:
                limit.wait_start()
                try:
                    chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                limit.wait_end()
                if chunk.content:
                    text.append(chunk.content)
                if chunk.usage is not None:
                    usage = chunk.usage
                yield chunk if wants_usage else _usage_as_asked(chunk)
        except asyncio.CancelledError:
            if not limit.absorb():
                gone = True  # the client went away
                raise
            failure = Failure(
                FailureClass.TIMEOUT, 0, f"no stream data for {self.idle_s * 1000:.0f} ms"
            )
        except Exception as exc:  # classified once, here at the stream boundary
            failure = _classified(exc)
        except BaseException:  # GeneratorExit: the client went away
            gone = True
            raise
        finally:
            limit.stop()
            self._end(text, usage, failure, gone)
        if failure is not None:
            raise StreamFailed(failure)

    def _end(
        self, text: list[str], usage: Usage | None, failure: Failure | None, gone: bool
    ) -> None:
        opened = self.opened
        attempt = opened.attempt
        attempt.latency_ms = (self.deps.clock() - opened.started) * 1000
        attempt.usage = usage
        cost = cost_of(usage, opened.model.prices)
        attempt.cost_usd, attempt.price_known = cost.usd, cost.known
        if failure is not None:
            attempt.outcome = AttemptResult.FAILED
            attempt.failure, attempt.message = failure.cls.value, failure.message
            self.deps.breakers.failure(opened.model.name, failure.cls)
        self.on_end(StreamEnd(opened, "".join(text), failure, gone))


def _classified(exc: Exception) -> Failure:
    if isinstance(exc, UpstreamError):
        return classify(exc)
    return Failure(FailureClass.SERVER_ERROR, 0, f"{type(exc).__name__}: {exc}")


def _usage_as_asked(chunk: StreamChunk) -> StreamChunk:
    """The engine always asks upstream for usage (for accounting). A client that did not
    ask gets what OpenAI would send it: no usage-only chunk and no ``usage`` field at all."""
    if "usage" not in chunk.data:
        return chunk
    if not chunk.data.get("choices"):
        chunk.send = False
    else:
        chunk.data = {key: value for key, value in chunk.data.items() if key != "usage"}
        chunk.raw = None  # relayed re-encoded, without the field
    return chunk
