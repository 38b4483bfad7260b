"""A real gateway for tests: the simulator on a free port, the gateway under uvicorn on
another, in the test's event loop, so tests can look at the router's records directly."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from modelroute import load_policy_text
from modelroute.records.record import MemorySink, RequestRecord
from modelroute.records.stores.base import Store
from modelroute.records.writer import RecordWriter
from modelroute.router import Router
from modelroute.serve import HTTP_PROTOCOL
from modelroute.server.app import create_app
from modelroute.server.responses_store import ResponseStore
from modelroute.testing import Simulator


@dataclass
class Gateway:
    url: str
    sim: Simulator
    router: Router
    sink: MemorySink
    clients: list[Any] = field(default_factory=list)

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    def closing(self, client: Any) -> None:
        """Close this SDK client when the gateway stops (before the loop closes)."""
        self.clients.append(client)

    def records(self) -> list[RequestRecord]:
        return list(self.sink.records)

    def record(self, request_id: str) -> RequestRecord:
        found = self.sink.find(request_id)
        assert found is not None, f"no record {request_id}"
        return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.asynccontextmanager
async def serve_router(
    router: Router,
    metrics: Any = None,
    feedback_token: str | None = None,
    responses: ResponseStore | None = None,
) -> AsyncIterator[str]:
    app = create_app(router, metrics, feedback_token, responses=responses)
    async with serve_app(app) as url:
        yield url


@contextlib.asynccontextmanager
async def serve_app(app: Any) -> AsyncIterator[str]:
    """Any ASGI app (a ``Gateway`` as ``serve`` builds it) under uvicorn on a free port."""
    port = free_port()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        loop="none",
        http=HTTP_PROTOCOL,
        lifespan="on",
        log_level="warning",
        access_log=False,
    )
    server = uvicorn.Server(config)
    task = asyncio.ensure_future(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


@contextlib.asynccontextmanager
async def gateway(
    policy_yaml: str,
    sim_config: dict[str, Any],
    *,
    store: Store | None = None,
    feedback_token: str | None = None,
    responses: ResponseStore | None = None,
    **router_kwargs: Any,
) -> AsyncIterator[Gateway]:
    """``policy_yaml`` may use ``{sim}`` for the simulator's base URL (with /v1) and
    ``{sim_root}`` for it without /v1 (Anthropic's convention). With a ``store``, records
    also go there through a ``RecordWriter``, as under ``modelroute serve``. ``responses``:
    where the Responses API's stored responses live (this process's memory by default)."""
    async with Simulator(sim_config) as sim, contextlib.AsyncExitStack() as stack:
        text = policy_yaml.replace("{sim}", sim.openai_base_url).replace("{sim_root}", sim.base_url)
        policy = load_policy_text(text, "test-policy.yaml")
        sink = MemorySink(capacity=1_000_000)  # every record of the test, however many
        router_kwargs.setdefault("api_keys", {name: "sk-test" for name in policy.models})
        if store is None:
            router = Router(policy, sink=sink, **router_kwargs)
        else:
            spool = stack.enter_context(tempfile.TemporaryDirectory(prefix="spool-"))
            writer = RecordWriter(store, spool)
            sinks = [sink, *router_kwargs.pop("sinks", ())]
            router = Router(policy, sink=writer, store=store, sinks=sinks, **router_kwargs)
        async with serve_router(router, feedback_token=feedback_token, responses=responses) as url:
            gw = Gateway(url, sim, router, sink)
            try:
                yield gw
            finally:
                for client in gw.clients:
                    await client.close()
