"""An OpenAI-compatible upstream whose streams a test paces, and which notes when the gateway
drops a stream it has not finished: how a test sees an upstream connection being released.

Each model streams ``chunks`` content pieces ``interval_s`` apart, then usage and ``[DONE]``.
A model with ``chunks=0`` never gets to content: it sends empty deltas (no output yet) until
the client leaves. Models named in ``together`` send their first content piece in the same
instant: the last of them to arrive writes that piece to every one of their streams at once,
so the gateway sees them all open together.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

# Upper bound on how long a never-content stream waits for its client to leave.
_IDLE_LIMIT_S = 5.0


@dataclass
class Plan:
    chunks: int = 20
    interval_s: float = 0.02


@dataclass
class Exchange:
    """One stream as the upstream saw it."""

    model: str
    written: int = 0  # content pieces that left
    gone_after_s: float | None = None  # since the first content piece (or the request)
    finished: bool = False
    first_at: float | None = None
    response: web.StreamResponse | None = field(default=None, repr=False)


def _event(model: str, delta: dict[str, Any], **extra: Any) -> bytes:
    chunk = {
        "id": "chatcmpl-paced",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        **extra,
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _piece(model: str, i: int) -> bytes:
    return _event(model, {"content": f"{model}:{i} "})


class PacedUpstream:
    def __init__(self, plans: dict[str, Plan], together: tuple[str, ...] = ()) -> None:
        self.plans = plans
        self.together = together
        self.exchanges: dict[str, Exchange] = {}
        self._opened = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self.url = ""

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[PacedUpstream]:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._handle)
        self._runner = web.AppRunner(app, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/v1"
        try:
            yield self
        finally:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        loop = asyncio.get_running_loop()
        model = (await request.json())["model"]
        plan = self.plans[model]
        exchange = self.exchanges[model] = Exchange(model)
        response = exchange.response = web.StreamResponse()
        response.content_type = "text/event-stream"
        start = loop.time()
        try:
            await response.prepare(request)
            await response.write(_event(model, {"role": "assistant", "content": ""}))
            if plan.chunks == 0:
                while loop.time() - start < _IDLE_LIMIT_S:
                    await asyncio.sleep(plan.interval_s)
                    await response.write(_event(model, {}))
                return response
            await self._first_piece(model)
            for i in range(1, plan.chunks):
                await asyncio.sleep(plan.interval_s)
                await response.write(_piece(model, i))
                exchange.written += 1
            usage = {"prompt_tokens": 5, "completion_tokens": plan.chunks, "total_tokens": 0}
            await response.write(_event(model, {}, usage=usage) + b"data: [DONE]\n\n")
            await response.write_eof()
            exchange.finished = True
        except (ConnectionResetError, ClientConnectionResetError):
            since = exchange.first_at if exchange.first_at is not None else start
            exchange.gone_after_s = loop.time() - since
        return response

    async def _first_piece(self, model: str) -> None:
        if model not in self.together:
            await self._send_first(model)
            return
        if any(name not in self.exchanges for name in self.together):
            await self._opened.wait()  # the last one to arrive sends for everyone
            return
        # Let every stream's headers and empty first delta be read, so that each client is
        # waiting on content; then the first piece goes to all of them in one step.
        await asyncio.sleep(0.05)
        for name in self.together:
            await self._send_first(name)
        self._opened.set()

    async def _send_first(self, model: str) -> None:
        exchange = self.exchanges[model]
        assert exchange.response is not None
        await exchange.response.write(_piece(model, 0))
        exchange.written += 1
        exchange.first_at = asyncio.get_running_loop().time()
