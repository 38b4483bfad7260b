"""``Router``: the engine in-process, for library users and for the HTTP gateway alike.

One request: features → plan (pure) → execute → record. Every request yields exactly one
record, whatever happens to it, handed to the sink off the request path.
"""

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
from modelroute.cache import CacheGate, Lookup, MemoryCache, ResponseCache
from modelroute.canary import BASELINE, CANARY, Canary
from modelroute.engine import (
    AllAttemptsFailed,
    EngineDeps,
    Execution,
    Executor,
    Relay,
    StreamEnd,
    route_of,
)
from modelroute.errors import (
    InfeasibleError,
    LimitError,
    ModelrouteError,
    RequestError,
    RouteNotAllowedError,
)
from modelroute.features import TokenCounts, request_context
from modelroute.feedback import TRUSTED, Caller, FeedbackResult, feedback_outcome
from modelroute.identity import ClientIdentity
from modelroute.learned.decide import decide, prompt_text
from modelroute.outcomes.measured import DEFAULT_REFRESH_S, MeasuredQuality
from modelroute.planner import Decision, StatsSnapshot, plan, select_route
from modelroute.policy import Policy, load_policy
from modelroute.policy.secrets import resolve_api_keys
from modelroute.providers.base import Provider
from modelroute.providers.http import Transport
from modelroute.providers.kinds import known_kinds
from modelroute.providers.registry import build_providers
from modelroute.recording import RecordBuilder, replay_chunks
from modelroute.records.fanout import FanOut
from modelroute.records.ids import RequestIds
from modelroute.records.planner_input import PlannerInput
from modelroute.records.record import MemorySink, RecordSink, RequestRecord, RequestStatus
from modelroute.records.writer import RecordWriter
from modelroute.sessions import MemoryPins, PinStore, Session
from modelroute.sessions.affinities import Affinities
from modelroute.shadow import MemoryOutcomes, ShadowSender, ShadowSettings, shadowed
from modelroute.state.admission import (
    Account,
    Admission,
    Shortfall,
    has_limits,
    model_limited,
    reserve_usd,
)
from modelroute.state.breakers import Breakers
from modelroute.state.circuits import CircuitState
from modelroute.state.limits import MemoryCounters
from modelroute.state.rolling import RollingStats, Served, label_score, served
from modelroute.types import Completion, StreamChunk

if TYPE_CHECKING:
    from modelroute.records.stores.base import Store

StatsSource = Callable[[], StatsSnapshot]


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
    """The engine in-process. Its ports, each optional:

    - ``providers``: provider kind -> ``Provider`` (``providers/base.py``); added to the
      built-in kinds and those installed packages declare (entry point group
      ``modelroute.providers``), and winning over them;
    - ``circuits``: the circuit breakers' state (``state/circuits.py``); in-process
      ``Breakers`` by default;
    - ``stats``: the measured statistics the planner reads (a callable returning a
      ``StatsSnapshot``); by default the router's own rolling window over its records, and
      with a ``store``, that window with quality measured from the store's outcomes
      (``outcomes/measured.py``), refreshed every ``quality_refresh_s`` seconds;
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
      entries (``modelroute.cache``); in this process's memory by default, timed on ``clock``.
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
    ) -> None:
        self.policy = policy
        self.cache = CacheGate(cache if cache is not None else MemoryCache(clock=clock))
        # Whether a policy (by hash) has a learned route, whose scorer reads the prompt's
        # text before planning (``learned.decide``); policies change on reload and canary.
        self._learned: dict[str, bool] = {}
        # Routes' and keys' limits; counted in this process unless given shared counters.
        self.limits = limits if limits is not None else Admission(MemoryCounters())
        # Every record goes to the main sink (a store writer, or memory), the rolling stats
        # the planner reads, and the other sinks (metrics, traces).
        self.records: RecordSink = sink if sink is not None else MemorySink()
        self.rolling = RollingStats(clock=clock)
        # each record settles what its request reserved
        self.sink = FanOut(self.records, self.rolling, self.limits, *sinks, *extra_sinks)
        self.store = store
        self.measured: MeasuredQuality | None = None
        if stats is None and store is not None:
            stats = self.measured = MeasuredQuality(
                store, self.rolling.snapshot, interval_s=quality_refresh_s, models=policy.models
            )
        self._stats = stats if stats is not None else self.rolling.snapshot
        self._clock = clock
        self.breakers: CircuitState = (
            circuits
            if circuits is not None
            else Breakers({m.name: m.breaker for m in policy.models.values()}, clock)
        )
        self.transport = Transport()
        needed = [(m.name, m.provider) for m in policy.models.values()]
        self._given = providers
        self.providers = build_providers(self.transport, needed, providers, policy.source)
        self._own_api_keys = api_keys is None  # read from the environment for each policy
        self._api_keys = dict(api_keys) if api_keys is not None else resolve_api_keys(policy)
        self.deps = EngineDeps(
            providers=self.providers,
            api_keys=self._api_keys,
            breakers=self.breakers,
            clock=clock,
            rng=rng if rng is not None else random.Random(),
        )
        self.shadows: ShadowSender | None = None
        if shadowed(policy):
            outcomes = store if store is not None else MemoryOutcomes()
            self.shadows = ShadowSender.for_router(
                policy,
                self.providers,
                self.deps.api_keys,
                clock,
                self.deps.rng,
                outcomes,
                shadow or ShadowSettings(),
            )
        self.content = content
        self._token_counts = TokenCounts()
        self._ids = RequestIds()
        self._snapshot: tuple[StatsSnapshot | None, frozenset[str], StatsSnapshot] | None = None
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
        built = [
            build_providers(
                self.transport, [(m.name, m.provider) for m in p.models.values()], self._given,
                p.source,
            )
            for p in policies
        ]  # fmt: skip
        for providers, p in zip(built, policies, strict=True):
            for kind, provider in providers.items():
                self.providers.setdefault(kind, provider)
            if self._own_api_keys:
                self._api_keys.update(resolve_api_keys(p))
            if self.measured is not None and self.measured.models is not None:
                self.measured.models = self.measured.models | frozenset(p.models)
        configure = getattr(self.breakers, "configure", None)
        if configure is not None:  # the policy's own settings win over the canary's
            configure({m.name: m.breaker for p in policies[::-1] for m in p.models.values()})
        self.policy, self.canary = policy, canary

    def _arm(
        self, body: Any, headers: Mapping[str, str] | None, identity: ClientIdentity | None
    ) -> tuple[Policy, str | None, str]:
        """The policy for one request, its arm while a canary runs, and its request id."""
        request_id = self._ids()
        canary = self.canary
        if canary is None or not isinstance(body, dict):
            return self.policy, None, request_id
        if canary.arm(body, headers, identity, request_id) == CANARY:
            return canary.policy, CANARY, request_id
        return self.policy, BASELINE, request_id

    def _has_learned(self, policy: Policy) -> bool:
        found = self._learned.get(policy.hash)
        if found is None:
            found = self._learned[policy.hash] = any(
                r.learned is not None for r in policy.routes.values()
            )
        return found

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
        self,
        body: Any,
        headers: Mapping[str, str] | None,
        endpoint: str,
        stream: bool,
        identity: ClientIdentity | None = None,
    ) -> tuple[RecordBuilder, Decision]:
        policy, arm, request_id = self._arm(body, headers, identity)
        builder = RecordBuilder(
            policy, endpoint, stream, self._clock, self.content, lambda: request_id
        )
        builder.record.arm = arm
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
            infeasible = InfeasibleError(decision)
            builder.finish_error(infeasible)
            raise self._submit(builder, infeasible)
        return builder, decision

    async def _admit(
        self, builder: RecordBuilder, decision: Decision, identity: ClientIdentity | None
    ) -> Decision:
        """The budgets and rate limits of the route, the caller's key and the first model,
        taken together (``state/admission.py``: one Redis script); a budget too short for
        the decision refuses it (429) or, with ``on_budget: degrade``, plans again with what
        is left as the cost ceiling: only cheaper models that fit it remain, and the
        decision's notes say so."""
        route = route_of(builder.policy, decision)
        account = Account.of(builder.record.client_key_id, identity)
        request_id = builder.record.request_id
        models = builder.policy.models
        try:
            model = model_limited(models, decision)
            short = await self.limits.admit(route, account, decision, request_id, model)
            if short is not None:
                if route.budget is not None and route.budget.on_budget == "degrade":
                    decision = self._degrade(builder, decision, short)
                    model = model_limited(models, decision)
                    short = await self.limits.admit(route, account, decision, request_id, model)
                if short is not None:
                    raise self.limits.refuse_budget(route, short)
        except LimitError as err:
            builder.finish_error(err)
            raise self._submit(builder, err) from None
        return decision

    async def _pinned(
        self, builder: RecordBuilder, decision: Decision, session: Session
    ) -> Decision:
        """Session affinity: the decision given the session's pinned model."""
        pinned = await self.affinity.look_up(builder.record, builder.policy, decision, session)
        if pinned is not decision:
            builder.decided(pinned)
        return pinned

    def _degrade(self, builder: RecordBuilder, decision: Decision, short: Shortfall) -> Decision:
        planned = builder.record.planner_input
        assert planned is not None
        ctx, stats = planned.context, planned.snapshot
        left = max(0.0, short.left_usd)
        ceiling = left if ctx.limits.max_cost_usd is None else min(left, ctx.limits.max_cost_usd)
        note = (
            f"on_budget degrade: the route's budget has ${left:.6f} left, under this request's "
            f"estimate for {decision.chosen} (${reserve_usd(decision):.6f}); planned with it "
            "as the cost ceiling"
        )
        ctx = ctx._replace(limits=ctx.limits._replace(max_cost_usd=ceiling))
        ctx = ctx._replace(notes=(*ctx.notes, note))
        builder.record.planner_input = PlannerInput(ctx, stats)
        # A learned route keeps the scores it was planned with (replay reads them the same way).
        scores = None if decision.learned is None else dict(decision.learned.scores)
        degraded = plan(ctx, builder.policy, stats, scores)
        builder.decided(degraded)
        if not degraded.tiers:
            raise self.limits.refuse_budget(route_of(builder.policy, decision), short)
        return degraded

    def prompt_tokens(self, body: Any, headers: Mapping[str, str] | None = None) -> int:
        """The prompt's tokens as routing estimates them (offline, see ``features``), for a
        request this policy can route; raises ``RequestError`` or ``UnknownRouteError``."""
        if not isinstance(body, dict):
            raise RequestError("the request body must be a JSON object")
        ctx = request_context(body, headers, self._token_counts)
        select_route(self.policy, ctx)
        return ctx.prompt_tokens

    def record_rejected(self, message: str, status: int, endpoint: str) -> RequestRecord:
        """A request refused before routing (unparseable body): still one record."""
        builder = RecordBuilder(self.policy, endpoint, False, self._clock, self.content, self._ids)
        r = builder.record
        r.status, r.http_status, r.error = RequestStatus.CLIENT_ERROR, status, message
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
        # The session's pin first: the cache key names the model that would answer.
        session = self.affinity.session(builder.policy, decision, body, headers)
        if session is not None:
            decision = await self._pinned(builder, decision, session)
        lookup = await self._look_up(builder, decision, body, headers)
        if lookup is not None and lookup.hit is not None:
            completion, answered = self._answer_cached(builder, lookup)
            return ChatResult(completion, builder.record, decision, answered)
        if _limited(builder.policy, decision, identity):
            decision = await self._admit(builder, decision, identity)
        executor = Executor(self.deps, builder.policy, decision, body, builder.start)
        execution = await self._execute(builder, executor, executor.complete)
        assert execution.answer is not None
        if session is not None:
            await self.affinity.served(
                builder.policy, decision, session, execution.answer.model.name
            )
        completion = _client_view(execution.answer.completion, body)
        builder.finish(execution, completion)
        if lookup is not None:
            model, cost = execution.answer.model.name, builder.record.cost_usd
            await self.cache.keep(lookup, completion.body, model, cost)
        self.sink.submit(builder.record)
        if self.shadows is not None:
            self.shadows.offer(decision, body, completion.content, builder.record)
        return ChatResult(completion, builder.record, decision, _marked(builder, lookup))

    async def _look_up(
        self,
        builder: RecordBuilder,
        decision: Decision,
        body: dict[str, Any],
        headers: Mapping[str, str] | None,
    ) -> Lookup | None:
        """The response cache, for a route that has one (``modelroute.cache``)."""
        route = builder.policy.routes.get(decision.route)
        if route is None or route.cache is None:
            return None
        chosen = decision.chosen
        model = None if chosen is None else builder.policy.models.get(chosen)
        lookup = await self.cache.lookup(route, model, body, headers)
        if lookup is not None:
            builder.record.cache_hit = lookup.hit is not None
        return lookup

    def _answer_cached(
        self, builder: RecordBuilder, lookup: Lookup
    ) -> tuple[Completion, dict[str, str]]:
        """A hit: its record (no attempt, cost 0, the cost saved) and its headers."""
        hit = lookup.hit
        assert hit is not None
        completion = hit.completion()
        builder.finish_cached(hit.model, hit.cost_usd, completion)
        self.sink.submit(builder.record)
        headers = _marked(builder, lookup)
        headers["x-modelroute-attempts"] = "0"
        return completion, headers

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
        session = self.affinity.session(builder.policy, decision, body, headers)
        if session is not None:
            decision = await self._pinned(builder, decision, session)
        lookup = await self._look_up(builder, decision, body, headers)
        if lookup is not None and lookup.hit is not None:
            completion, answered = self._answer_cached(builder, lookup)
            replay = replay_chunks(completion, wants_usage)
            return ChatStream(replay, builder.record, decision, answered)
        if _limited(builder.policy, decision, identity):
            decision = await self._admit(builder, decision, identity)
        executor = Executor(self.deps, builder.policy, decision, body, builder.start)
        execution = await self._execute(builder, executor, executor.stream)
        if session is not None:
            served = execution.stream or execution.answer
            assert served is not None
            await self.affinity.served(builder.policy, decision, session, served.model.name)
        opened = execution.stream
        if opened is None:  # an early cascade tier's answer, accepted: replayed as a stream
            assert execution.answer is not None
            completion = _client_view(execution.answer.completion, body)
            builder.finish(execution, completion)
            if lookup is not None:
                model, cost = execution.answer.model.name, builder.record.cost_usd
                await self.cache.keep(lookup, completion.body, model, cost)
            self.sink.submit(builder.record)
            chunks: AsyncIterator[StreamChunk] = replay_chunks(completion, wants_usage)
            if self.shadows is not None:
                offer = partial(
                    self.shadows.offer, decision, body, completion.content, builder.record
                )
                chunks = _then(chunks, offer)
            headers = builder.headers(execution.answer, execution.attempts)
            if lookup is not None:
                headers[CACHE_HEADER] = "miss"
            return ChatStream(chunks, builder.record, decision, headers)
        attempts = execution.attempts

        def ended(end: StreamEnd) -> None:
            builder.finish_stream(end, execution)
            self.sink.submit(builder.record)
            if self.shadows is not None and builder.record.status == RequestStatus.OK:
                self.shadows.offer(decision, body, end.text, builder.record)

        idle = executor.route.timeouts.attempt_ms / 1000  # the longest silence accepted
        relay = Relay(self.deps, opened, idle, wants_usage, ended)
        headers = builder.headers(opened, attempts)
        relayed = relay.chunks()
        if lookup is not None:
            headers[CACHE_HEADER] = "miss"
            relayed = self.cache.keeping(lookup, relayed, partial(_kept_as, builder.record))
        stream = ChatStream(relayed, builder.record, decision, headers)
        # A caller may drop the stream without reading it; its record must still be written.
        finalizer = weakref.finalize(stream, relay.abandon)
        finalizer.atexit = False  # at interpreter exit the sinks are gone already
        return stream

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
        start_circuits = getattr(self.breakers, "start", None)
        if start_circuits is not None:  # a shared view's sync runs beside the requests
            await start_circuits()
        writer = self.records if isinstance(self.records, RecordWriter) else None
        policy = self.policy
        if writer is not None and policy.text is not None:  # for the dashboard's versions
            writer.remember_policy(policy.hash, policy.version, policy.source, policy.text)
        if self.store is not None and (writer is None or writer.store is not self.store):
            await self.store.open()
            if policy.text is not None:
                await self.store.remember_policy(
                    policy.hash, policy.version, policy.source, policy.text
                )
        for sink in self.sink.sinks:
            start = getattr(sink, "start", None)
            if start is not None:
                await start()
        if self.measured is not None:  # the store is open (or being retried) by now
            await self.measured.start()

    def records_health(self) -> dict[str, Any]:
        """Whether records reach their store (``/readyz``); records kept in memory always do."""
        if isinstance(self.records, RecordWriter):
            return self.records.health()
        return {"state": "ok"}

    async def aclose(self) -> None:
        """Let queued shadow comparisons finish (for a bounded time), stop the quality refresh,
        drain the record sinks (nothing queued is lost), then close the providers (those
        passed in too: the router owns what it serves with) and their connections."""
        if self.shadows is not None:
            await self.shadows.aclose()
        if self.measured is not None:
            await self.measured.close()
        for sink in self.sink.sinks:
            close = getattr(sink, "close", None)
            if close is not None:
                await close()  # the limits' settlements too
        if self.store is not None:
            await self.store.close()
        await self.affinity.pins.aclose()
        close_circuits = getattr(self.breakers, "aclose", None)
        if close_circuits is not None:
            await close_circuits()
        for provider in {id(p): p for p in self.providers.values()}.values():
            await provider.aclose()
        await self.transport.aclose()
        await self.cache.aclose()

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
        if score is not None and not 0.0 <= score <= 1.0:
            raise ValueError(f"a feedback score must be in [0, 1], got {score}")
        served = self.rolling.served(request_id)
        local = served is not None
        if served is None:
            served = await self._served_earlier(request_id)
        if served is None:
            return FeedbackResult.UNKNOWN_REQUEST
        refused = caller.refusal(served.client_key_id)
        if refused is not None:
            return refused
        value = score if score is not None else label_score(label)
        store = self.store
        if store is not None:
            # A request served here may still be on its way to the store: wait up to 2 s.
            fields = (request_id, score, label, source, comment)
            stored = await _retry(lambda: store.add_feedback(*fields), 20 if local else 1)
            if not stored and not local:
                return FeedbackResult.UNKNOWN_REQUEST
            if value is not None and served.model is not None:
                # the rating counts in measured quality like any other outcome; a later one
                # for the same request replaces it
                rated = feedback_outcome(request_id, served, value, source, time.time())
                await store.add_outcomes([rated], replace=True)
        if served.route is not None and served.model is not None:
            self.rolling.add_quality(served.route, served.model, request_id, value)
        return FeedbackResult.STORED

    async def _served_earlier(self, request_id: str) -> Served | None:
        """A request this process does not remember (served before a restart, or by another
        worker): from the store, or from the in-memory records."""
        if self.store is not None:
            stored = await self.store.get(request_id)
            if stored is None:
                return None
            return Served(
                stored["route"], stored["final_model"], stored["client_key_id"], stored["task"],
                stored["final_reported_model"], stored["cost_usd"], stored["latency_ms"],
            )  # fmt: skip
        found = self.records.find(request_id) if isinstance(self.records, MemorySink) else None
        return None if found is None else served(found)

    def close(self) -> None:
        if self._runner is not None:
            self._runner.run(self.aclose())
            self._runner.close()
            self._runner = None


def _marked(builder: RecordBuilder, lookup: Lookup | None) -> dict[str, str]:
    """The response headers, with ``x-modelroute-cache`` when the cache was consulted."""
    headers = builder.headers()
    if lookup is not None:
        headers[CACHE_HEADER] = "miss" if lookup.hit is None else "hit"
    return headers


def _kept_as(record: RequestRecord) -> tuple[str, float] | None:
    """A relayed stream's answering model and cost, if it ended well (else nothing is kept)."""
    if record.status != RequestStatus.OK or record.final_model is None:
        return None
    return record.final_model, record.cost_usd


def _limited(policy: Policy, decision: Decision, identity: ClientIdentity | None) -> bool:
    """Does the request count against a route's, its key's or its model's limits?"""
    if has_limits(route_of(policy, decision)) or model_limited(policy.models, decision):
        return True
    return identity is not None and (identity.budget is not None or not identity.limits.unlimited)


async def _retry(attempt: Callable[[], Awaitable[bool]], tries: int) -> bool:
    for n in range(tries):
        if n:
            await asyncio.sleep(0.1)
        if await attempt():
            return True
    return False


async def _then(
    chunks: AsyncIterator[StreamChunk], done: Callable[[], None]
) -> AsyncIterator[StreamChunk]:
    """``chunks``, then ``done()`` once the last one was read."""
    async for chunk in chunks:
        yield chunk
    done()


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
