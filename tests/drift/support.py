"""What the drift tests share: a real webhook receiver, stores filled with seeded traffic."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from modelroute.outcomes.outcome import Outcome
from modelroute.records.record import RequestRecord
from modelroute.records.stores.base import Store

from .traffic import DAY, Served, outcomes, records


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that keeps every JSON body POSTed to it."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    fail_next: int = 0  # answer this many POSTs with a 500 first


@contextlib.asynccontextmanager
async def webhook_receiver() -> AsyncIterator[Receiver]:
    app = web.Application()
    runner = web.AppRunner(app)
    receiver = Receiver("")

    async def hook(request: web.Request) -> web.Response:
        if receiver.fail_next:
            receiver.fail_next -= 1
            return web.Response(status=500)
        receiver.bodies.append(json.loads(await request.read()))
        return web.Response(status=204)

    app.router.add_post("/hook", hook)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    receiver.url = f"http://127.0.0.1:{port}/hook"
    try:
        yield receiver
    finally:
        await runner.cleanup()


async def fill(
    store: Store,
    rng: np.random.Generator,
    now: float,
    baseline: Sequence[tuple[Served, int]],
    current: Sequence[tuple[Served, int]],
    outcome_means: Sequence[tuple[Served, int, float, float]] = (),
    graded: bool = False,
    tag: str = "",
) -> None:
    """Traffic of a 7-day baseline and a 1-day current window ending at ``now``; outcomes
    (served, n per window, baseline mean, current mean). ``tag`` starts every request id."""
    rows: list[RequestRecord] = []
    for served, n in baseline:
        rows += records(rng, served, now - 8 * DAY, now - DAY, n, tag=f"{tag}b")
    for served, n in current:
        rows += records(rng, served, now - DAY, now - 1.0, n, tag=f"{tag}c")
    for i in range(0, len(rows), 2000):
        await store.write(rows[i : i + 2000])
    found: list[Outcome] = []
    for served, n, before, after in outcome_means:
        found += outcomes(rng, served, now - 8 * DAY, now - DAY, n, before, graded=graded)
        found += outcomes(rng, served, now - DAY, now - 1.0, n, after, graded=graded, run="c")
    await store.add_outcomes(found)
