"""What runs beside a router's requests (the record writer and sinks, the quality refresh,
a shared circuit view's sync, the shadow worker): started and stopped with the router, and
everything it serves with closed after."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any, Self

from modelroute.cache import CacheGate
from modelroute.features import TokenCounts
from modelroute.outcomes.measured import MeasuredQuality
from modelroute.policy import Policy
from modelroute.providers.base import Provider
from modelroute.providers.http import Transport
from modelroute.records.fanout import FanOut
from modelroute.records.record import RecordSink
from modelroute.records.writer import RecordWriter
from modelroute.sessions.affinities import Affinities
from modelroute.shadow import ShadowSender
from modelroute.state.circuits import CircuitState

if TYPE_CHECKING:
    from modelroute.records.stores.base import Store


class Lifecycle:
    """The router's start and close (``Router`` sets these attributes)."""

    policy: Policy
    records: RecordSink
    sink: FanOut
    store: Store | None
    measured: MeasuredQuality | None
    shadows: ShadowSender | None
    breakers: CircuitState
    providers: dict[str, Provider]
    transport: Transport
    cache: CacheGate
    affinity: Affinities
    _token_counts: TokenCounts
    _runner: asyncio.Runner | None  # the private event loop of ``chat_sync``

    def warm_up(self) -> None:
        """Load the tokenizer and open the connection pool now (call inside the event loop)."""
        self._token_counts("warm up")
        self.transport.warm_up()

    async def __aenter__(self) -> Self:
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

    def close(self) -> None:
        """``aclose`` for a router used through ``chat_sync``, on its private event loop."""
        if self._runner is not None:
            self._runner.run(self.aclose())
            self._runner.close()
            self._runner = None
