"""The ``Router`` class: one request, features → plan (pure) → execute → record, and what
runs beside the requests (the record writer, the quality refresh, the shadow worker)."""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelroute.cache import HEADER as CACHE_HEADER
from modelroute.cache import Lookup, MemoryCache, ResponseCache
from modelroute.canary import Canary
from modelroute.engine import (
    AllAttemptsFailed,
    EngineDeps,
    Execution,
    Executor,
    Relay,
    StreamEnd,
)
from modelroute.errors import LimitError, ModelrouteError, RequestError, RouteNotAllowedError
from modelroute.features import TokenCounts, request_context
from modelroute.feedback import TRUSTED, Caller, FeedbackResult
from modelroute.identity import ClientIdentity
from modelroute.learned.decide import decide, prompt_text
from modelroute.outcomes.measured import DEFAULT_REFRESH_S, MeasuredQuality
from modelroute.planner import Decision, StatsSnapshot, plan, select_route
from modelroute.policy import Policy, load_policy
from modelroute.policy.secrets import resolve_api_keys
from modelroute.providers.base import Provider
from modelroute.providers.http import Transport
from modelroute.providers.kinds import known_kinds
from modelroute.recording import RecordBuilder, replay_chunks
from modelroute.records.fanout import FanOut
from modelroute.records.ids import RequestIds
from modelroute.records.record import MemorySink, RecordSink, RequestRecord, RequestStatus
from modelroute.router.admission import admit, limited
from modelroute.router.caching import (
    answer_cached,
    cache_gate,
    kept_as,
    look_up,
    marked,
    semantic_index,
)
from modelroute.router.client_view import client_view
from modelroute.router.feedback import join_feedback
from modelroute.router.lifecycle import Lifecycle
from modelroute.router.policies import LearnedRoutes, arm, configure_breakers, providers_for
from modelroute.router.results import ChatResult, ChatStream
from modelroute.router.shadowing import shadow_sender
from modelroute.router.stats import PlannerStats, StatsSource
from modelroute.sessions import MemoryPins, PinStore, Session
from modelroute.sessions.affinities import Affinities
from modelroute.shadow import ShadowSettings
from modelroute.state.admission import Admission
from modelroute.state.breakers import Breakers
from modelroute.state.circuits import CircuitState
from modelroute.state.limits import MemoryCounters
from modelroute.state.recent import KEPT_WITH_STORE_S, RecentRequests
from modelroute.state.rolling import RollingStats, Served
from modelroute.statuses import infeasible
from modelroute.types import Completion, StreamChunk

if TYPE_CHECKING:
    from modelroute.cache.semantic import SemanticIndex
    from modelroute.records.stores.base import Store


class Router(Lifecycle):
    """The engine in-process. Its ports, each optional:

    - ``providers``: provider kind -> ``Provider`` (``providers/base.py``); added to the
      built-in kinds and those installed packages declare (entry point group
      ``modelroute.providers``), and winning over them;
    - ``circuits``: the circuit breakers' state (``state/circuits.py``); in-process
      ``Breakers`` by default;
    - ``stats``: the measured statistics the planner reads (a callable returning a
      ``StatsSnapshot``); by default the router's own rolling window over its records, and
      with a ``store``, that window with quality measured from the store's outcomes
      (``outcomes/measured.py``), refreshed every ``quality_refresh_s`` seconds; a ``store``
      must be where ``sink`` writes: feedback looks there for requests older than the few
      seconds this process remembers (``state/recent.py``);
    - ``sink``: where records are kept (a store's writer, or memory, the default), and
      ``sinks``: every other place each record goes (metrics, traces);
    - ``clock``: monotonic seconds, read for every timing the engine and records keep; it
      must agree with the event loop's clock, which times deadlines and sleeps (under a
      virtual-time loop, pass ``loop.time``); ``rng`` draws the retry jitter, and seeds
      the shadow sampling;
    - ``limits``: where the routes' rate limits and budgets are counted (``Admission`` over
      in-process or Redis counters, ``state/``); without it, routes with limits are counted
      in this process;
    - ``pins``: where sessions' pinned models are kept, for routes with session affinity
      (``modelroute.sessions``: ``MemoryPins`` on ``clock`` by default, or ``RedisPins``);
    - ``shadow``: how the shadow worker runs (``ShadowSettings``), for a policy whose routes
      declare ``shadow:``; its comparisons go to ``store``, else to memory
      (``router.shadows.outcomes``);
    - ``cache``: where the response cache of routes that declare ``cache:`` keeps its
      entries (``modelroute.cache``); in this process's memory by default, timed on ``clock``;
      ``semantic``: the index of routes with ``cache: {mode: semantic}`` (always in this
      process); by default made, and the embedding model loaded, when a policy has one
      (this one or one given later to ``use_policy``), holding at most
      ``semantic_max_entries`` (10,000 when None). Its entries are keys into ``cache``: a
      paraphrase whose answer has left ``cache`` is a miss.
    """

    def __init__(
        self,
        policy: Policy,
        *,
        providers: Mapping[str, Provider] | None = None,
        circuits: CircuitState | None = None,
        stats: StatsSource | None = None,
        sink: RecordSink | None = None,
        sinks: Sequence[RecordSink] = (),
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        api_keys: Mapping[str, str | None] | None = None,
        content: str = "truncated",
        store: Store | None = None,
        shadow: ShadowSettings | None = None,
        extra_sinks: Sequence[RecordSink] = (),  # the former name of ``sinks``, still taken
        quality_refresh_s: float = DEFAULT_REFRESH_S,
        limits: Admission | None = None,
        cache: ResponseCache | None = None,
        pins: PinStore | None = None,
        semantic: SemanticIndex | None = None,
        semantic_max_entries: int | None = None,
    ) -> None:
        self.policy = policy
        backend = cache if cache is not None else MemoryCache(clock=clock)
        self.cache = cache_gate(backend, semantic, semantic_max_entries, policy, clock)
        self._has_learned = LearnedRoutes()
        # Routes' and keys' limits; counted in this process unless given shared counters.
        self.limits = limits if limits is not None else Admission(MemoryCounters())
        # Every record goes to the main sink (a store writer, or memory), the rolling stats
        # the planner reads, and the other sinks (metrics, traces).
        self.records: RecordSink = sink if sink is not None else MemorySink()
        # With a store, feedback finds any request but the last few seconds' there.
        recent = RecentRequests[Served](
            max_age_s=None if store is None else KEPT_WITH_STORE_S, clock=clock
        )
        self.rolling = RollingStats(clock=clock, recent=recent)
        # each record settles what its request reserved
        self.sink = FanOut(self.records, self.rolling, self.limits, *sinks, *extra_sinks)
        self.store = store
        self.measured: MeasuredQuality | None = None
        if stats is None and store is not None:
            stats = self.measured = MeasuredQuality(
                store, self.rolling.snapshot, interval_s=quality_refresh_s, models=policy.models
            )
        self._clock = clock
        self.breakers: CircuitState = (
            circuits
            if circuits is not None
            else Breakers({m.name: m.breaker for m in policy.models.values()}, clock)
        )
        self._planner_stats = PlannerStats(
            stats if stats is not None else self.rolling.snapshot, self.breakers
        )
        self.transport = Transport()
        self._given = providers
        self.providers = providers_for(self.transport, policy, providers)
        self._own_api_keys = api_keys is None  # read from the environment for each policy
        self._api_keys = dict(api_keys) if api_keys is not None else resolve_api_keys(policy)
        self.deps = EngineDeps(
            providers=self.providers,
            api_keys=self._api_keys,
            breakers=self.breakers,
            clock=clock,
            rng=rng if rng is not None else random.Random(),
        )
        self.shadows = shadow_sender(policy, self.deps, store, shadow)
        self.content = content
        self._token_counts = TokenCounts()
        self._ids = RequestIds()
        self._runner: asyncio.Runner | None = None
        # A new policy serving a share of the traffic (``use_policy(..., canary=)``).
        self.canary: Canary | None = None
        # Sessions' pinned models, for routes with session affinity (``modelroute.sessions``).
        self.affinity = Affinities(pins if pins is not None else MemoryPins(clock))

    @classmethod
    def from_file(
        cls, path: str | Path, *, providers: Mapping[str, Provider] | None = None, **kwargs: Any
    ) -> Router:
        """Load the policy at ``path`` (its models may name the kinds of ``providers`` too)."""
        kinds = (*known_kinds(), *(providers or {}))
        return cls(load_policy(path, kinds), providers=providers, **kwargs)

    def use_policy(self, policy: Policy, canary: Canary | None = None) -> None:
        """Serve ``policy`` (and ``canary``, when given, beside it) from the next request on.
        Requests already planned finish on the policy they started with. Both must be valid
        (loaded): their models' providers are added here, and raise ``PolicyError`` if a
        kind is unknown, before anything changes. The circuit breakers take the new
        policies' settings (``configure``, when the circuit state has it); shadow rules and
        the shadow worker stay those of the policy the router started with."""
        policies = (policy, *((canary.policy,) if canary is not None else ()))
        built = [providers_for(self.transport, p, self._given) for p in policies]
        gate = self.cache
        semantic = semantic_index(policies, gate.semantic, self._clock, gate.semantic_max_entries)
        for providers, p in zip(built, policies, strict=True):
            for kind, provider in providers.items():
                self.providers.setdefault(kind, provider)
            if self._own_api_keys:
                self._api_keys.update(resolve_api_keys(p))
            if self.measured is not None and self.measured.models is not None:
                self.measured.models = self.measured.models | frozenset(p.models)
        configure_breakers(self.breakers, policies)  # the policy's win over the canary's
        self.cache.semantic = semantic
        self.policy, self.canary = policy, canary

    def stats_snapshot(self) -> StatsSnapshot:
        """Measured stats plus the circuits open right now; rebuilt only when either changes."""
        return self._planner_stats()

    def _begin(
        self,
        body: Any,
        headers: Mapping[str, str] | None,
        endpoint: str,
        stream: bool,
        identity: ClientIdentity | None = None,
    ) -> tuple[RecordBuilder, Decision]:
        request_id = self._ids()
        policy, canary_arm = arm(self.policy, self.canary, body, headers, identity, request_id)
        builder = RecordBuilder(
            policy, endpoint, stream, self._clock, self.content, lambda: request_id
        )
        builder.record.arm = canary_arm
        builder.client(headers, identity)
        if not isinstance(body, dict):
            malformed = RequestError("the request body must be a JSON object")
            builder.finish_error(malformed)
            raise self._submit(builder, malformed)
        try:
            ctx = request_context(body, headers, self._token_counts)
            stats = self.stats_snapshot()
            builder.context(ctx, body, stats)
            if self._has_learned(policy):
                decision = decide(ctx, partial(prompt_text, body), policy, stats)
            else:
                decision = plan(ctx, policy, stats)
        except ModelrouteError as err:
            builder.finish_error(err)
            raise self._submit(builder, err) from None
        builder.decided(decision)
        if identity is not None and not identity.allows(decision.route):
            refused = RouteNotAllowedError(decision.route, identity.name)
            builder.finish_error(refused)
            raise self._submit(builder, refused)
        if not decision.tiers:
            refusal = infeasible(decision, policy.models, body)
            builder.finish_error(refusal)
            raise self._submit(builder, refusal)
        return builder, decision

    async def _consult(
        self,
        builder: RecordBuilder,
        decision: Decision,
        body: dict[str, Any],
        headers: Mapping[str, str] | None,
    ) -> tuple[Decision, Session | None, Lookup | None]:
        """The session's pinned model (session affinity), then the response cache: the
        cache key names the model that would answer."""
        session = self.affinity.session(builder.policy, decision, body, headers)
        if session is not None:
            pinned = await self.affinity.look_up(builder.record, builder.policy, decision, session)
            if pinned is not decision:
                builder.decided(pinned)
            decision = pinned
        return decision, session, await look_up(self.cache, builder, decision, body, headers)

    async def _run(
        self,
        builder: RecordBuilder,
        decision: Decision,
        body: dict[str, Any],
        identity: ClientIdentity | None,
        session: Session | None,
        streamed: bool,
    ) -> tuple[Decision, Executor, Execution]:
        """Admit the request against its limits, run the decision, and pin the session to the
        model that answered; a refusal or failure is recorded and raised."""
        if limited(builder.policy, decision, identity):
            try:
                decision = await admit(self.limits, builder, decision, identity)
            except LimitError as err:
                builder.finish_error(err)
                raise self._submit(builder, err) from None
        executor = Executor(self.deps, builder.policy, decision, body, builder.start)
        execution = await self._execute(
            builder, executor, executor.stream if streamed else executor.complete
        )
        if session is not None:
            served = execution.stream or execution.answer
            assert served is not None
            await self.affinity.served(builder.policy, decision, session, served.model.name)
        return decision, executor, execution

    def prompt_tokens(self, body: Any, headers: Mapping[str, str] | None = None) -> int:
        """The prompt's tokens as routing estimates them (offline, see ``features``), for a
        request this policy can route; raises ``RequestError`` or ``UnknownRouteError``."""
        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object")
        ctx = request_context(body, headers, self._token_counts)
        select_route(self.policy, ctx)
        return ctx.prompt_tokens

    def record_rejected(self, message: str, status: int, endpoint: str) -> RequestRecord:
        """A request refused before routing (unparseable body, or a 5xx ``status``: what it
        needed first could not be read): still one record."""
        builder = RecordBuilder(self.policy, endpoint, False, self._clock, self.content, self._ids)
        r = builder.record
        r.status = RequestStatus.CLIENT_ERROR if status < 500 else RequestStatus.FAILED
        r.http_status, r.error = status, message
        self.sink.submit(r)
        return r

    def _submit(self, builder: RecordBuilder, err: ModelrouteError) -> ModelrouteError:
        err.record = builder.record
        self.sink.submit(builder.record)
        return err

    async def _execute(
        self, builder: RecordBuilder, executor: Executor, run: Callable[[], Awaitable[Execution]]
    ) -> Execution:
        """Run the decision; a failure is recorded and raised, as is the client leaving."""
        try:
            execution = await run()
        except BaseException:
            builder.finish_cancelled(executor.attempts)
            self.sink.submit(builder.record)
            raise
        if execution.failure is not None:
            builder.finish(execution)
            raise self._submit(builder, AllAttemptsFailed(execution.failure, execution.attempts))
        return execution

    async def _answered(
        self,
        builder: RecordBuilder,
        execution: Execution,
        body: dict[str, Any],
        lookup: Lookup | None,
    ) -> Completion:
        """A finished answer as the client asked for it, recorded, and kept in the cache."""
        answer = execution.answer
        assert answer is not None
        completion = client_view(answer.completion, body)
        builder.finish(execution, completion)
        if lookup is not None:
            model, cost = answer.model.name, builder.record.cost_usd
            await self.cache.keep(lookup, completion.body, model, cost)
        self.sink.submit(builder.record)
        return completion

    async def chat(
        self,
        body: dict[str, Any],
        headers: Mapping[str, str] | None = None,
        *,
        endpoint: str = "chat.completions",
        identity: ClientIdentity | None = None,
    ) -> ChatResult:
        """Route and run one non-streamed request. Raises ``RequestError``,
        ``UnknownRouteError``, ``InfeasibleError``, ``AllAttemptsFailed``, or
        ``RouteNotAllowedError`` when ``identity`` (the authenticated caller,
        ``modelroute.identity``) may not use the selected route."""
        builder, decision = self._begin(body, headers, endpoint, False, identity)
        decision, session, lookup = await self._consult(builder, decision, body, headers)
        if lookup is not None and lookup.hit is not None:
            completion, answered = answer_cached(builder, lookup, self.sink)
            return ChatResult(completion, builder.record, decision, answered)
        decision, _, execution = await self._run(builder, decision, body, identity, session, False)
        completion = await self._answered(builder, execution, body, lookup)
        if self.shadows is not None:
            self.shadows.offer(decision, body, completion.content, builder.record)
        return ChatResult(completion, builder.record, decision, marked(builder, lookup))

    async def stream(
        self,
        body: dict[str, Any],
        headers: Mapping[str, str] | None = None,
        *,
        endpoint: str = "chat.completions",
        identity: ClientIdentity | None = None,
    ) -> ChatStream:
        """Route and open a streamed request. Returns once the first output is in hand, so
        every failure before it (including empty streams) has already fallen back.
        ``identity``: as for ``chat``."""
        builder, decision = self._begin(body, headers, endpoint, True, identity)
        wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        decision, session, lookup = await self._consult(builder, decision, body, headers)
        if lookup is not None and lookup.hit is not None:
            completion, answered = answer_cached(builder, lookup, self.sink)
            replay = replay_chunks(completion, wants_usage)
            return ChatStream(replay, builder.record, decision, answered)
        decision, executor, execution = await self._run(
            builder, decision, body, identity, session, True
        )
        if execution.stream is None:  # an early cascade tier's answer, accepted: replayed
            return await self._replayed(builder, decision, execution, body, lookup, wants_usage)
        idle = executor.route.timeouts.attempt_ms / 1000  # the longest silence accepted
        return self._relayed(builder, decision, execution, body, lookup, (idle, wants_usage))

    async def _replayed(
        self,
        builder: RecordBuilder,
        decision: Decision,
        execution: Execution,
        body: dict[str, Any],
        lookup: Lookup | None,
        wants_usage: bool,
    ) -> ChatStream:
        """An early cascade tier's answer, accepted: replayed as a stream."""
        completion = await self._answered(builder, execution, body, lookup)
        chunks: AsyncIterator[StreamChunk] = replay_chunks(completion, wants_usage)
        if self.shadows is not None:
            offer = partial(self.shadows.offer, decision, body, completion.content, builder.record)
            chunks = _then(chunks, offer)
        assert execution.answer is not None
        headers = builder.headers(execution.answer, execution.attempts)
        if lookup is not None:
            headers[CACHE_HEADER] = "miss"
        return ChatStream(chunks, builder.record, decision, headers)

    def _relayed(
        self,
        builder: RecordBuilder,
        decision: Decision,
        execution: Execution,
        body: dict[str, Any],
        lookup: Lookup | None,
        relaying: tuple[float, bool],
    ) -> ChatStream:
        """A stream open past its first byte, relayed to the client; its record is written
        when it ends, however it ends. ``relaying``: the longest silence accepted (seconds)
        and whether the client asked for usage."""
        opened = execution.stream
        assert opened is not None

        def ended(end: StreamEnd) -> None:
            builder.finish_stream(end, execution)
            self.sink.submit(builder.record)
            if self.shadows is not None and builder.record.status == RequestStatus.OK:
                self.shadows.offer(decision, body, end.text, builder.record)

        idle, wants_usage = relaying
        relay = Relay(self.deps, opened, idle, wants_usage, ended)
        headers = builder.headers(opened, execution.attempts)
        relayed = relay.chunks()
        if lookup is not None:
            headers[CACHE_HEADER] = "miss"
            relayed = self.cache.keeping(lookup, relayed, partial(kept_as, builder.record))
        stream = ChatStream(relayed, builder.record, decision, headers)
        # A caller may drop the stream without reading it; its record must still be written.
        finalizer = weakref.finalize(stream, relay.abandon)
        finalizer.atexit = False  # at interpreter exit the sinks are gone already
        return stream

    def chat_sync(
        self, body: dict[str, Any], headers: Mapping[str, str] | None = None
    ) -> ChatResult:
        """A thin synchronous wrapper over ``chat`` with a private event loop."""
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(self.chat(body, headers))

    async def feedback(
        self,
        request_id: str,
        score: float | None,
        label: str | None = None,
        source: str | None = None,
        comment: str | None = None,
        *,
        caller: Caller = TRUSTED,
    ) -> FeedbackResult:
        """Join a quality signal to a request, replacing any earlier one: a request counts
        once in measured quality however often it is rated. Unless ``caller`` is trusted, it
        must be the caller that made the request (see ``modelroute.feedback``). With a
        store, a score (or a known label) is also stored as an outcome of the request."""
        rating = (request_id, score, label, source, comment)
        return await join_feedback(self.rolling, self.store, self.records, *rating, caller)


async def _then(
    chunks: AsyncIterator[StreamChunk], done: Callable[[], None]
) -> AsyncIterator[StreamChunk]:
    """``chunks``, then ``done()`` once the last one was read."""
    async for chunk in chunks:
        yield chunk
    done()
