"""``Router``: the engine in-process, for library users and for the HTTP gateway alike.

One request: features → plan (pure) → execute → record. Every request yields exactly one
record, whatever happens to it, handed to the sink off the request path.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from modelroute.engine import AllAttemptsFailed, Answer, EngineDeps, Executor, OpenStream
from modelroute.engine.idle import IdleLimit
from modelroute.errors import InfeasibleError, ModelrouteError, RequestError
from modelroute.failures import UNHEALTHY, Failure, FailureClass
from modelroute.features import TokenCounts, request_context
from modelroute.planner import Decision, StatsSnapshot, plan
from modelroute.policy import Policy, load_policy
from modelroute.policy.secrets import resolve_api_keys
from modelroute.providers.http import Transport
from modelroute.providers.registry import build_providers
from modelroute.recording import RecordBuilder, replay_chunks
from modelroute.records.fanout import FanOut
from modelroute.records.ids import RequestIds
from modelroute.records.record import MemorySink, RecordSink, RequestRecord
from modelroute.records.writer import RecordWriter
from modelroute.state.breakers import Breakers, BreakerSettings
from modelroute.state.rolling import RollingStats, label_score
from modelroute.types import Completion, StreamChunk

if TYPE_CHECKING:
    from modelroute.records.stores.base import Store

StatsSource = Callable[[], StatsSnapshot]
T = TypeVar("T")


class ChatResult:
    """A finished, non-streamed request."""

    def __init__(
        self,
        completion: Completion,
        record: RequestRecord,
        decision: Decision,
        headers: dict[str, str],
    ) -> None:
        self.completion = completion
        self.record = record
        self.decision = decision
        self.headers = headers

    def to_openai(self) -> dict[str, Any]:
        return self.completion.body


class _RelayProgress:
    """Whether a stream's relay has begun (after which the relay itself records the end)."""

    __slots__ = ("started",)

    def __init__(self) -> None:
        self.started = False


class StreamFailed(ModelrouteError):
    """A stream failed after its first byte reached the client; it ends with an error event."""

    def __init__(self, failure_class: str, message: str) -> None:
        self.failure_class = failure_class
        super().__init__(message)


class ChatStream:
    """A streamed request that has already produced its first output. Iterate for chunks;
    ``record`` is complete (and submitted) once iteration ends, however it ends."""

    def __init__(
        self,
        chunks: AsyncIterator[StreamChunk],
        record: RequestRecord,
        decision: Decision,
        headers: dict[str, str],
    ) -> None:
        self._chunks = chunks
        self.record = record
        self.decision = decision
        self.headers = headers

    def __aiter__(self) -> AsyncIterator[StreamChunk]:
        return self._chunks

    async def aclose(self) -> None:
        aclose = getattr(self._chunks, "aclose", None)
        if aclose is not None:
            await aclose()


class Router:
    def __init__(
        self,
        policy: Policy,
        *,
        api_keys: Mapping[str, str | None] | None = None,
        stats: StatsSource | None = None,
        sink: RecordSink | None = None,
        clock: Callable[[], float] = time.monotonic,
        breaker_settings: BreakerSettings | None = None,
        content: str = "truncated",
        store: Store | None = None,
        extra_sinks: Sequence[RecordSink] = (),
    ) -> None:
        self.policy = policy
        # Every record goes to the main sink (a store writer, or memory), the rolling stats
        # the planner reads, and any extra sinks (metrics, traces).
        self.records: RecordSink = sink if sink is not None else MemorySink()
        self.rolling = RollingStats(clock=clock)
        self.sink = FanOut(self.records, self.rolling, *extra_sinks)
        self.store = store
        self._stats = stats if stats is not None else self.rolling.snapshot
        self._clock = clock
        self.breakers = Breakers(breaker_settings, clock)
        self.transport = Transport()
        self.deps = EngineDeps(
            providers=build_providers(self.transport),
            api_keys=dict(api_keys) if api_keys is not None else resolve_api_keys(policy),
            breakers=self.breakers,
            clock=clock,
        )
        self.content = content
        self._token_counts = TokenCounts()
        self._ids = RequestIds()
        # The HTTP status of a request whose every attempt failed, for its record; set by the
        # server (the only place that knows statuses) before the record is submitted.
        self.failed_status: Callable[[Failure], int] | None = None
        self.error_status: Callable[[ModelrouteError], int] | None = None
        self._snapshot: tuple[StatsSnapshot | None, frozenset[str], StatsSnapshot] | None = None
        self._runner: asyncio.Runner | None = None

    @classmethod
    def from_file(cls, path: str | Path, **kwargs: Any) -> Router:
        return cls(load_policy(path), **kwargs)

    def stats_snapshot(self) -> StatsSnapshot:
        """Measured stats plus the circuits open right now; rebuilt only when either changes."""
        base = self._stats() if self._stats is not None else None
        opened = self.breakers.open_models()
        cached = self._snapshot
        if cached is not None and cached[0] is base and cached[1] is opened:
            return cached[2]
        merged = StatsSnapshot(
            by_route=base.by_route if base else {},
            by_model=base.by_model if base else {},
            open_circuits=opened | (base.open_circuits if base else frozenset()),
        )
        self._snapshot = (base, opened, merged)
        return merged

    def _begin(
        self, body: Any, headers: Mapping[str, str] | None, endpoint: str, stream: bool
    ) -> tuple[RecordBuilder, Decision]:
        builder = RecordBuilder(self.policy, endpoint, stream, self._clock, self.content, self._ids)
        builder.client(headers)
        if not isinstance(body, dict):
            malformed = RequestError("the request body must be a JSON object")
            builder.finish_error(malformed)
            raise self._submit(builder, malformed)
        try:
            ctx = request_context(body, headers, self._token_counts)
            stats = self.stats_snapshot()
            builder.context(ctx, body, stats)
            decision = plan(ctx, self.policy, stats)
        except ModelrouteError as err:
            builder.finish_error(err)
            raise self._submit(builder, err) from None
        builder.decided(decision)
        if not decision.tiers:
            infeasible = InfeasibleError(decision)
            builder.finish_error(infeasible)
            raise self._submit(builder, infeasible)
        return builder, decision

    def record_rejected(self, message: str, status: int, endpoint: str) -> RequestRecord:
        """A request refused before routing (unparseable body): still one record."""
        builder = RecordBuilder(self.policy, endpoint, False, self._clock, self.content, self._ids)
        r = builder.record
        r.status, r.http_status, r.error = "client_error", status, message
        self.sink.submit(r)
        return r

    def _submit(self, builder: RecordBuilder, err: ModelrouteError) -> ModelrouteError:
        err.record = builder.record
        if self.error_status is not None:  # the status the client will get, set by the server
            builder.record.http_status = self.error_status(err)
        self.sink.submit(builder.record)
        return err

    async def _execute(
        self, builder: RecordBuilder, executor: Executor, run: Callable[[], Awaitable[T]]
    ) -> T:
        """Run the decision; whatever ends it, the record is finished and submitted once."""
        try:
            return await run()
        except AllAttemptsFailed as err:
            builder.finish_failed(err, executor.attempts, self.failed_status)
            raise self._submit(builder, err) from None
        except BaseException:
            builder.finish_cancelled(executor.attempts)
            self.sink.submit(builder.record)
            raise

    async def chat(
        self,
        body: dict[str, Any],
        headers: Mapping[str, str] | None = None,
        *,
        endpoint: str = "chat.completions",
    ) -> ChatResult:
        """Route and run one non-streamed request. Raises ``RequestError``,
        ``UnknownRouteError``, ``InfeasibleError`` or ``AllAttemptsFailed``."""
        builder, decision = self._begin(body, headers, endpoint, stream=False)
        executor = Executor(self.deps, self.policy, decision, body, builder.start)
        answer = await self._execute(builder, executor, executor.complete)
        completion = _client_view(answer.completion, body)
        builder.finish_answer(answer, executor.attempts, completion)
        self.sink.submit(builder.record)
        return ChatResult(completion, builder.record, decision, builder.headers())

    async def stream(
        self,
        body: dict[str, Any],
        headers: Mapping[str, str] | None = None,
        *,
        endpoint: str = "chat.completions",
    ) -> ChatStream:
        """Route and open a streamed request. Returns once the first output is in hand, so
        every failure before it (including empty streams) has already fallen back."""
        builder, decision = self._begin(body, headers, endpoint, stream=True)
        executor = Executor(self.deps, self.policy, decision, body, builder.start)
        opened = await self._execute(builder, executor, executor.stream)
        if isinstance(opened, Answer):
            completion = _client_view(opened.completion, body)
            builder.finish_answer(opened, executor.attempts, completion)
            self.sink.submit(builder.record)
            wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
            chunks: AsyncIterator[StreamChunk] = replay_chunks(completion, wants_usage)
            headers = builder.headers(opened, executor.attempts)
            return ChatStream(chunks, builder.record, decision, headers)
        progress = _RelayProgress()
        chunks = self._relay(opened, builder, executor, body, progress)
        stream = ChatStream(
            chunks, builder.record, decision, builder.headers(opened, executor.attempts)
        )
        # A caller may drop the stream without reading it; its record must still be written.
        finalizer = weakref.finalize(stream, self._abandoned, progress, builder, opened, executor)
        finalizer.atexit = False  # at interpreter exit the sinks are gone already
        return stream

    def _abandoned(
        self,
        progress: _RelayProgress,
        builder: RecordBuilder,
        opened: OpenStream,
        executor: Executor,
    ) -> None:
        """A stream collected before it was read: the relay never ran, so record it here.
        (The provider's stream is closed by the event loop's async-generator finalizer.)"""
        if progress.started:
            return
        builder.relay(opened, executor.attempts).close(None, gone=True)
        self.sink.submit(builder.record)

    async def _relay(
        self,
        opened: OpenStream,
        builder: RecordBuilder,
        executor: Executor,
        body: dict[str, Any],
        progress: _RelayProgress,
    ) -> AsyncIterator[StreamChunk]:
        """Forward the stream; after the first byte a failure can only end it with an error."""
        progress.started = True
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        idle = executor.route.timeouts.attempt_ms / 1000  # the longest silence we accept
        relay = builder.relay(opened, executor.attempts)
        failed: tuple[str, str] | None = None
        gone = False
        limit = IdleLimit(idle)
        try:
            for chunk in opened.buffered:
                relay.seen(chunk)
                chunk.send = chunk.usage is None or wants_usage or bool(chunk.content)
                yield chunk
            iterator = opened.rest.__aiter__()
            while True:
                limit.wait_start()
                try:
                    chunk = await iterator.__anext__()
                except StopAsyncIteration:
                    break
                limit.wait_end()
                relay.seen(chunk)
                if chunk.usage is not None and not wants_usage and not chunk.data.get("choices"):
                    chunk.send = False  # asked for our accounting, not by the client
                yield chunk
        except asyncio.CancelledError:
            if not limit.absorb():
                gone = True  # the client went away
                raise
            failed = ("timeout", f"no stream data for {idle * 1000:.0f} ms")
        except Exception as exc:  # classified once, here at the stream boundary
            failed = relay.failure(exc)
        except BaseException:  # GeneratorExit: the client went away
            gone = True
            raise
        finally:
            limit.stop()
            relay.close(failed, gone)
            if failed is None:
                self.breakers.success(opened.model.name)
            else:
                self.breakers.failure(opened.model.name, FailureClass(failed[0]) in UNHEALTHY)
            self.sink.submit(builder.record)
        if failed is not None:
            raise StreamFailed(*failed)

    def warm_up(self) -> None:
        """Load the tokenizer and open the connection pool now (call inside the event loop)."""
        self._token_counts("warm up")
        self.transport.warm_up()

    def chat_sync(
        self, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> ChatResult:
        """A thin synchronous wrapper over ``chat`` with a private event loop."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(self.chat(body, headers))

    async def __aenter__(self) -> Router:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Start what runs beside the requests (the record writer); call inside the loop.
        The writer opens the store it writes to, and serves on while it is unreachable; a
        store written some other way is opened here."""
        writer = self.records if isinstance(self.records, RecordWriter) else None
        if self.store is not None and (writer is None or writer.store is not self.store):
            await self.store.open()
        for sink in self.sink.sinks:
            start = getattr(sink, "start", None)
            if start is not None:
                await start()

    def records_health(self) -> dict[str, Any]:
        """Whether records reach their store (``/readyz``); records kept in memory always do."""
        if isinstance(self.records, RecordWriter):
            return self.records.health()
        return {"state": "ok"}

    async def aclose(self) -> None:
        """Drain the record sinks (nothing queued is lost), then close connections."""
        for sink in self.sink.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                await close()
        if self.store is not None:
            await self.store.close()
        await self.transport.aclose()

    async def feedback(
        self,
        request_id: str,
        score: float | None,
        label: str | None,
        source: str | None,
        comment: str | None,
    ) -> bool:
        """Join a quality signal to a request. False when the request is unknown."""
        value = score if score is not None else label_score(label)
        where = self.rolling.route_and_model(request_id)
        known = where is not None
        if self.store is not None:
            for _ in range(20):  # the record may still be on its way to the store
                if await self.store.add_feedback(request_id, value, label, source, comment):
                    known = True
                    break
                if where is None:
                    break
                await asyncio.sleep(0.1)
            if where is None and known:
                stored = await self.store.get(request_id)
                if stored and stored.get("route") and stored.get("final_model"):
                    where = (stored["route"], stored["final_model"])
        elif not known and isinstance(self.records, MemorySink):
            found = self.records.find(request_id)
            if found is not None and found.route and found.final_model:
                where, known = (found.route, found.final_model), True
        if where is not None and value is not None:
            self.rolling.add_quality(where[0], where[1], value)
        return known

    def close(self) -> None:
        if self._runner is not None:
            self._runner.run(self.aclose())
            self._runner.close()
            self._runner = None


def _client_view(completion: Completion, body: dict[str, Any]) -> Completion:
    """Remove logprobs the router asked for on its own account (cascade confidence)."""
    if body.get("logprobs"):
        return completion
    choices = completion.body.get("choices")
    if isinstance(choices, list) and any(
        isinstance(c, dict) and c.get("logprobs") for c in choices
    ):
        stripped = [{**c, "logprobs": None} if isinstance(c, dict) else c for c in choices]
        completion.body = {**completion.body, "choices": stripped}
    return completion
