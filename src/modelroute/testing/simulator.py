"""A fault-injecting LLM upstream: a real HTTP server speaking OpenAI and Anthropic wire formats.

Used by tests and benchmarks in place of real providers::

    async with Simulator({"models": {"small": {"script": ["server_error", "ok"]}}}) as sim:
        client = openai.AsyncOpenAI(base_url=sim.openai_base_url, api_key="x")
        ...
        assert sim.stats()["small"] == {"server_error": 1, "ok": 1}

Endpoints
    POST /v1/chat/completions     OpenAI Chat Completions (plain and SSE)
    POST /v1/messages             Anthropic Messages (plain and SSE)
    POST /v1/responses            OpenAI Responses (plain and SSE; a web_search tool is faked)
    GET  /v1/models               model list (Anthropic shape if ``anthropic-version`` is sent)
    GET  /health
    GET  /_sim/models[/{name}]    current config of the models
    POST /_sim/models/{name}      partial change of one model (creates it if unknown)
    GET  /_sim/stats              {model: {outcome: count}}
    GET  /_sim/requests           the last requests received (body and headers)
    POST /_sim/reset              back to the loaded config, stats cleared, RNGs reseeded
                                  (and the kept responses forgotten)

Every response whose headers are sent carries ``x-sim-outcome``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import asdict
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web
from pydantic import ValidationError

from modelroute.testing.sim_config import ModelConfig, SimulatorConfig, merged_model_config
from modelroute.testing.sim_engine import ModelRuntime
from modelroute.testing.sim_handler import (
    OUTCOME_HEADER,
    RecordedRequest,
    SimState,
    error_response,
    handle_completion,
)
from modelroute.testing.sim_wire import Wire
from modelroute.testing.sim_wire_anthropic import AnthropicWire
from modelroute.testing.sim_wire_openai import OpenAIWire
from modelroute.testing.sim_wire_responses import ResponsesWire

log = logging.getLogger(__name__)

_OPENAI: Wire = OpenAIWire()
_ANTHROPIC: Wire = AnthropicWire()
# Stopping waits this long for in-flight requests; hung ones are then cancelled.
_SHUTDOWN_GRACE_S = 0.5
# Large enough for context-window tests with long prompts (aiohttp's default is 1 MiB).
_MAX_BODY_BYTES = 64 * 1024 * 1024
_CREATED = 1_700_000_000


class Simulator:
    """The simulator: config, runtime state and (once started) an HTTP server.

    Not thread-safe: call ``update_model``/``reset`` from the event loop that serves it
    (tests do; from another thread, use the ``/_sim`` endpoints instead).
    """

    def __init__(self, config: SimulatorConfig | Mapping[str, Any] | None = None) -> None:
        if isinstance(config, SimulatorConfig):
            self._initial = config
        else:
            self._initial = SimulatorConfig.model_validate(dict(config or {}))
        self._configs: dict[str, ModelConfig] = {}
        self._state = SimState(self._initial.api_key, {})
        # the Responses API's responses kept (by id), when the config says to keep them
        self._kept: dict[str, int] = {}
        self._responses_wire: Wire = ResponsesWire(
            self._kept if self._initial.keep_responses else None
        )
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None
        self._port: int | None = None
        self.reset()

    @classmethod
    def from_file(cls, path: str | Path) -> Simulator:
        return cls(SimulatorConfig.from_yaml(path))

    # -- state ---------------------------------------------------------------------------

    @property
    def config(self) -> SimulatorConfig:
        """The current config, admin changes included."""
        return self._initial.model_copy(update={"models": dict(self._configs)})

    def reset(self) -> None:
        """Back to the loaded config: admin changes undone, scripts refilled, RNGs reseeded."""
        self._configs = dict(self._initial.models)
        self._state.models = {
            name: ModelRuntime(name, cfg, self._rng(name)) for name, cfg in self._configs.items()
        }
        self._state.stats.clear()
        self._state.recent.clear()
        self._kept.clear()

    def forget_responses(self) -> None:
        """Forget every kept response (as an upstream's copies expire or are deleted): a
        request naming one is refused from now on (``previous_response_not_found``)."""
        self._kept.clear()

    def _rng(self, name: str) -> random.Random:
        # One RNG per model: outcomes of one model do not depend on traffic to the others.
        return random.Random(f"{self._initial.seed}:{name}")

    def update_model(self, name: str, **changes: Any) -> ModelConfig:
        """Change one model at run time; each key given replaces that key of its config.

        ``script`` replaces the queue of pending scripted outcomes; without it, the pending
        queue and the RNG carry over. An unknown ``name`` creates the model.
        Raises ``pydantic.ValidationError`` on an invalid change (nothing is changed then).
        """
        config = merged_model_config(self._configs.get(name), changes)
        old = self._state.models.get(name)
        runtime = ModelRuntime(name, config, old.rng if old is not None else self._rng(name))
        if old is not None and "script" not in changes:
            runtime.script = old.script
        self._configs[name] = config
        self._state.models[name] = runtime
        return config

    def stats(self) -> dict[str, dict[str, int]]:
        """Requests per model per outcome (``"*"`` when the model could not be read)."""
        return {model: dict(outcomes) for model, outcomes in self._state.stats.items()}

    def requests(self) -> list[RecordedRequest]:
        """The last requests received (up to 256), oldest first."""
        return list(self._state.recent)

    # -- server --------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://host:port`` (what the Anthropic SDK takes as ``base_url``)."""
        if self._base_url is None:
            raise RuntimeError("the simulator is not started")
        return self._base_url

    @property
    def openai_base_url(self) -> str:
        """``http://host:port/v1`` (what the OpenAI SDK takes as ``base_url``)."""
        return self.base_url + "/v1"

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the simulator is not started")
        return self._port

    def make_app(self) -> web.Application:
        """The aiohttp application, for embedding; ``start`` serves it."""
        app = web.Application(client_max_size=_MAX_BODY_BYTES)
        add = app.router
        add.add_post("/v1/chat/completions", self._chat_completions)
        add.add_post("/v1/messages", self._messages)
        add.add_post("/v1/responses", self._responses)
        add.add_get("/v1/models", self._list_models)
        add.add_get("/health", self._health)
        add.add_get("/_sim/models", self._admin_models)
        add.add_get("/_sim/models/{name}", self._admin_model)
        add.add_post("/_sim/models/{name}", self._admin_update)
        add.add_get("/_sim/stats", self._admin_stats)
        add.add_get("/_sim/requests", self._admin_requests)
        add.add_post("/_sim/reset", self._admin_reset)
        return app

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve on ``host:port`` (0 picks a free port); returns the base URL."""
        if self._runner is not None:
            raise RuntimeError("the simulator is already started")
        # handler_cancellation: a client that gives up cancels its handler, so hung and
        # reset requests do not leave sleeping tasks behind.
        runner = web.AppRunner(
            self.make_app(),
            handler_cancellation=True,
            access_log=None,
            shutdown_timeout=_SHUTDOWN_GRACE_S,
        )
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self._port = int(runner.addresses[0][1])
        self._base_url = f"http://{_url_host(host)}:{self._port}"
        return self._base_url

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        self._base_url = self._port = None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> Simulator:
        if self._runner is None:
            await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # -- handlers ------------------------------------------------------------------------

    async def _chat_completions(self, request: web.Request) -> web.StreamResponse:
        return await handle_completion(self._state, _OPENAI, request)

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        return await handle_completion(self._state, _ANTHROPIC, request)

    async def _responses(self, request: web.Request) -> web.StreamResponse:
        return await handle_completion(self._state, self._responses_wire, request)

    async def _list_models(self, request: web.Request) -> web.StreamResponse:
        anthropic = "anthropic-version" in request.headers
        wire = _ANTHROPIC if anthropic else _OPENAI
        key = self._state.api_key
        if key is not None and not wire.authorized(request.headers, key):
            return error_response(wire, wire.unauthorized(), "unauthorized")
        names = list(self._state.models)
        body = _anthropic_models(names) if anthropic else _openai_models(names)
        return _json(body)

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return _json({"status": "ok"})

    async def _admin_models(self, request: web.Request) -> web.StreamResponse:
        return _json({n: c.model_dump(mode="json") for n, c in self._configs.items()})

    async def _admin_model(self, request: web.Request) -> web.StreamResponse:
        config = self._configs.get(request.match_info["name"])
        if config is None:
            return _json({"error": {"message": "unknown model"}}, status=404)
        return _json(config.model_dump(mode="json"))

    async def _admin_update(self, request: web.Request) -> web.StreamResponse:
        try:
            changes = orjson.loads(await request.read())
        except orjson.JSONDecodeError:
            return _json({"error": {"message": "body is not JSON"}}, status=400)
        if not isinstance(changes, dict):
            return _json({"error": {"message": "body must be a JSON object"}}, status=400)
        try:
            config = self.update_model(request.match_info["name"], **changes)
        except ValidationError as exc:
            details = exc.errors(include_url=False, include_context=False)
            return _json({"error": {"message": str(exc), "details": details}}, status=400)
        return _json(config.model_dump(mode="json"))

    async def _admin_stats(self, request: web.Request) -> web.StreamResponse:
        return _json(self.stats())

    async def _admin_requests(self, request: web.Request) -> web.StreamResponse:
        return _json([asdict(r) for r in self._state.recent])

    async def _admin_reset(self, request: web.Request) -> web.StreamResponse:
        self.reset()
        return _json({"status": "reset"})


def _json(body: Any, status: int = 200) -> web.Response:
    data = orjson.dumps(body, default=str)
    headers = {OUTCOME_HEADER: "ok" if status < 400 else "admin_error"}
    return web.Response(body=data, status=status, content_type="application/json", headers=headers)


def _openai_models(names: list[str]) -> dict[str, Any]:
    data = [
        {"id": n, "object": "model", "created": _CREATED, "owned_by": "simulator"} for n in names
    ]
    return {"object": "list", "data": data}


def _anthropic_models(names: list[str]) -> dict[str, Any]:
    data = [
        {"type": "model", "id": n, "display_name": n, "created_at": "2023-11-14T22:13:20Z"}
        for n in names
    ]
    first, last = (names[0], names[-1]) if names else (None, None)
    return {"data": data, "has_more": False, "first_id": first, "last_id": last}


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


# -- blocking entry point (CLI) ------------------------------------------------------------


def run_simulator(
    config_path: str | Path,
    host: str = "127.0.0.1",
    port: int = 8900,
    *,
    ready: Callable[[str], None] | None = None,
    until_stdin_closes: bool = False,
) -> None:
    """Serve the simulator until SIGINT/SIGTERM; uses uvloop when it is installed.

    ``ready`` is called with the base URL once the port is bound (useful with port 0).
    ``until_stdin_closes``: serve until stdin reaches end of file (or SIGTERM), ignoring
    SIGINT: the process that started it holds the pipe and stops it by closing it, or by
    ending, however it ends; a Ctrl-C reaches that process, which stops us in its own time.
    """
    config = SimulatorConfig.from_yaml(config_path)
    if until_stdin_closes:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        runner.run(_serve(config, host, port, ready, until_stdin_closes))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _serve(
    config: SimulatorConfig,
    host: str,
    port: int,
    ready: Callable[[str], None] | None,
    until_stdin_closes: bool,
) -> None:
    sim = Simulator(config)
    url = await sim.start(host, port)
    if ready is not None:
        ready(url)
    log.info("simulator listening on %s", url)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    signals = [signal.SIGTERM]
    if until_stdin_closes:
        _on_stdin_eof(lambda: loop.call_soon_threadsafe(stopping.set))
    else:
        signals.append(signal.SIGINT)
    for sig in signals:
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopping.set)
    try:
        await stopping.wait()
    finally:
        await sim.stop()


def _on_stdin_eof(callback: Callable[[], object]) -> None:
    """Call ``callback`` from a thread once stdin is at end of file (a thread: portable to
    any kind of stdin). Reads the descriptor, not ``sys.stdin``, whose buffer lock a blocked
    daemon thread would hold while the interpreter shuts down."""

    def watch() -> None:
        with contextlib.suppress(OSError, ValueError):
            while os.read(sys.stdin.fileno(), 65536):
                pass
        with contextlib.suppress(RuntimeError):  # the loop ended first (SIGTERM)
            callback()

    threading.Thread(target=watch, name="stdin-watch", daemon=True).start()
