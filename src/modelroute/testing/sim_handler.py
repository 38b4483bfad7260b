"""The request path of the simulator: from an HTTP request to a (possibly faulty) answer.

Order of checks, as the real providers do it: auth (401), body (400), model (404),
context length (400); only then the model's outcome is drawn - so refused requests never
consume a scripted entry or an RNG draw.
"""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web
from aiohttp.client_exceptions import ClientConnectionResetError

from modelroute.testing.sim_engine import ModelRuntime, SimRequest, build_reply, check_context
from modelroute.testing.sim_faults import drop_connection, hang, reset_connection
from modelroute.testing.sim_wire import BadRequest, Exchange, Wire, WireError

OUTCOME_HEADER = "x-sim-outcome"
# The "timeout" fault answers this many times slower than the sampled latency.
TIMEOUT_FACTOR = 50.0
# Pacing below this is not worth a trip through the event loop: tokens go out in a burst.
_MIN_SLEEP_S = 0.001
# Stats key for requests whose model could not be read.
NO_MODEL = "*"


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the simulator saw it, for tests that check what a gateway sent."""

    endpoint: str
    model: str
    outcome: str
    body: Any
    headers: dict[str, str]


class SimState:
    """The mutable state the request path reads: models, key, stats, recent requests."""

    def __init__(self, api_key: str | None, models: dict[str, ModelRuntime]) -> None:
        self.api_key = api_key
        self.models = models
        self.stats: dict[str, dict[str, int]] = {}
        self.recent: deque[RecordedRequest] = deque(maxlen=256)

    def record(self, request: web.Request, model: str, outcome: str, body: Any) -> None:
        per_model = self.stats.setdefault(model, {})
        per_model[outcome] = per_model.get(outcome, 0) + 1
        # Lower-cased plain-str keys: one spelling to look up, and JSON-serialisable.
        headers = {k.lower(): v for k, v in request.headers.items()}
        self.recent.append(RecordedRequest(request.path, model, outcome, body, headers))


@dataclass(slots=True)
class Turn:
    """One accepted request with its drawn outcome and delays."""

    wire: Wire
    request: web.Request
    req: SimRequest
    rt: ModelRuntime
    outcome: str
    latency_s: float
    ttft_s: float


async def handle_completion(
    state: SimState, wire: Wire, request: web.Request
) -> web.StreamResponse:
    """Entry point of ``/v1/chat/completions`` and ``/v1/messages``."""
    body = _loads_object(await request.read())
    model = body.get("model") if body is not None else None
    key = model if isinstance(model, str) and model else NO_MODEL
    if state.api_key is not None and not wire.authorized(request.headers, state.api_key):
        return _refuse(state, request, wire, key, "unauthorized", wire.unauthorized(), body)
    if body is None:
        problem = wire.bad_request("We could not parse the JSON body of your request.")
        return _refuse(state, request, wire, key, "bad_request", problem, body)
    try:
        req = wire.parse(body)
    except BadRequest as exc:
        problem = wire.bad_request(exc.message, exc.param, exc.code)
        return _refuse(state, request, wire, key, "bad_request", problem, body)
    rt = state.models.get(req.model)
    if rt is None:
        return _refuse(state, request, wire, key, "unknown_model", wire.not_found(key), body)
    overflow = check_context(req, rt.context_window)
    if overflow is not None:
        problem = wire.context_length(overflow)
        return _refuse(state, request, wire, key, "context_length", problem, body)
    # Fixed number of draws per request, in a fixed order, before any await: reproducible.
    outcome = rt.next_outcome()
    turn = Turn(
        wire, request, req, rt, outcome, rt.latency.sample_s(rt.rng), rt.ttft.sample_s(rt.rng)
    )
    state.record(request, key, outcome, body)
    try:
        return await _OUTCOMES[outcome](turn)
    except (ConnectionResetError, ClientConnectionResetError):
        # The client gave up (its timeout, a hedge it lost): nobody is left to answer.
        return web.Response(status=499)


def _loads_object(raw: bytes) -> dict[str, Any] | None:
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    return body if isinstance(body, dict) else None


def _refuse(
    state: SimState,
    request: web.Request,
    wire: Wire,
    model: str,
    outcome: str,
    problem: WireError,
    body: Any,
) -> web.Response:
    state.record(request, model, outcome, body)
    return error_response(wire, problem, outcome)


def _headers(wire: Wire, outcome: str) -> dict[str, str]:
    return {OUTCOME_HEADER: outcome, wire.request_id_header: f"req_{secrets.token_hex(12)}"}


def error_response(
    wire: Wire, problem: WireError, outcome: str, extra: dict[str, str] | None = None
) -> web.Response:
    headers = _headers(wire, outcome)
    if extra:
        headers.update(extra)
    return web.Response(
        status=problem.status,
        reason=problem.reason,
        body=problem.body,
        content_type="application/json",
        headers=headers,
    )


# -- outcomes ----------------------------------------------------------------------------


async def _server_error(turn: Turn) -> web.StreamResponse:
    await asyncio.sleep(turn.ttft_s)
    return error_response(turn.wire, turn.wire.server_error(), turn.outcome)


async def _overloaded(turn: Turn) -> web.StreamResponse:
    await asyncio.sleep(turn.ttft_s)
    return error_response(turn.wire, turn.wire.overloaded(), turn.outcome)


async def _rate_limited(turn: Turn) -> web.StreamResponse:
    await asyncio.sleep(turn.ttft_s)
    retry = turn.rt.retry_after_s
    problem = turn.wire.rate_limited(turn.rt.reported_model, retry)
    # Retry-After is whole seconds (RFC 9110): round up so clients never retry early; the
    # OpenAI SDK also reads the finer retry-after-ms.
    extra = {
        "retry-after": str(math.ceil(retry)),
        "retry-after-ms": str(round(retry * 1000)),
        "x-ratelimit-remaining-requests": "0",
    }
    return error_response(turn.wire, problem, turn.outcome, extra)


async def _hang(turn: Turn) -> web.StreamResponse:
    await hang()
    return error_response(turn.wire, turn.wire.server_error(), turn.outcome)


async def _reset(turn: Turn) -> web.StreamResponse:
    await reset_connection(turn.request)
    return web.Response(status=500)  # never sent: the connection is gone


async def _answer(turn: Turn) -> web.StreamResponse:
    """ok, empty_content, timeout, malformed_json, and the stream-only faults."""
    outcome = turn.outcome
    if not turn.req.stream and outcome == "disconnect_mid_stream":
        return await _reset(turn)
    if not turn.req.stream and outcome == "stream_error":
        await asyncio.sleep(turn.ttft_s)
        return error_response(turn.wire, turn.wire.overloaded(), outcome)
    x = _exchange(turn)
    if turn.req.stream:
        return await _stream(turn, x)
    delay = turn.latency_s * (TIMEOUT_FACTOR if outcome == "timeout" else 1.0)
    await asyncio.sleep(delay)
    wire = turn.wire
    body = wire.malformed_body(x) if outcome == "malformed_json" else wire.completion(x)
    return web.Response(
        body=body, content_type="application/json", headers=_headers(turn.wire, outcome)
    )


def _exchange(turn: Turn) -> Exchange:
    answer = turn.rt.pick_answer(turn.req.match_text)
    reply = build_reply(answer, turn.req, empty=turn.outcome == "empty_content")
    rt = turn.rt
    token = secrets.token_hex(12)
    cached = rt.cached_tokens(turn.req)
    return Exchange(
        token, int(time.time()), rt.reported_model, rt.fingerprint, turn.req, reply, cached
    )


async def _stream(turn: Turn, x: Exchange) -> web.StreamResponse:
    outcome, wire = turn.outcome, turn.wire
    first = turn.latency_s * TIMEOUT_FACTOR if outcome == "timeout" else turn.ttft_s
    await asyncio.sleep(first)
    headers = _headers(wire, outcome)
    headers["cache-control"] = "no-cache"
    resp = web.StreamResponse(headers=headers)
    resp.content_type = "text/event-stream"
    await resp.prepare(turn.request)
    await resp.write(wire.stream_head(x))
    if outcome == "malformed_json":
        await resp.write(wire.stream_malformed(x))
    n = len(x.reply.tool_pieces) if x.reply.tool is not None else len(x.reply.tokens)
    faulty = outcome in ("disconnect_mid_stream", "stream_error")
    # "A few" chunks before the fault: at most 3, and never the whole answer.
    stop_at = min(3, n // 2) if faulty else n
    await _write_pieces(resp, turn, x, stop_at)
    if outcome == "disconnect_mid_stream":
        await drop_connection(turn.request)
        return resp
    await resp.write(wire.stream_error() if outcome == "stream_error" else wire.stream_tail(x))
    await resp.write_eof()
    return resp


async def _write_pieces(resp: web.StreamResponse, turn: Turn, x: Exchange, count: int) -> None:
    """Write ``count`` pieces, the i-th no earlier than i / tokens_per_second after the first."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    spt = turn.rt.seconds_per_token
    for i in range(count):
        ahead = start + i * spt - loop.time()
        if ahead > _MIN_SLEEP_S:
            await asyncio.sleep(ahead)
        await resp.write(turn.wire.stream_piece(x, i))


_OUTCOMES: dict[str, Callable[[Turn], Awaitable[web.StreamResponse]]] = {
    "ok": _answer,
    "empty_content": _answer,
    "timeout": _answer,
    "malformed_json": _answer,
    "disconnect_mid_stream": _answer,
    "stream_error": _answer,
    "server_error": _server_error,
    "overloaded": _overloaded,
    "rate_limited": _rate_limited,
    "hang": _hang,
    "reset": _reset,
}
