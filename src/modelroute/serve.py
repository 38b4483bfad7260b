"""Running the gateway: uvicorn with uvloop and httptools, and the policy's simulator if any."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from modelroute.policy import Policy

log = logging.getLogger("modelroute.serve")

if TYPE_CHECKING:
    from modelroute.records.metrics import MetricsSink
    from modelroute.records.record import RecordSink
    from modelroute.records.stores.base import Store
    from modelroute.router import Router, StatsSource
    from modelroute.server.app import Gateway, Service
    from modelroute.server.ui import DashboardUI
    from modelroute.state.backends import StateBackend


class SimulatorError(Exception):
    """The policy's simulator cannot run (its port is taken, it would not start): the CLI
    prints it as one line and exits 2."""


@contextlib.contextmanager
def policy_simulator(policy: Policy, policy_path: str) -> Iterator[str | None]:
    """Start the simulator a policy declares (``simulator: {config, port}``) in its own
    process, wait until it answers, and stop it on the way out.

    The simulator lives exactly as long as this process: it exits when its stdin (a pipe from
    here) closes, which the OS does when this process ends for any reason, SIGKILL included
    (uvicorn ends the process by re-raising SIGTERM, so no ``finally`` here would run)."""
    if policy.simulator is None:
        yield None
        return
    config, host, port = policy.simulator
    path = Path(config)
    if not path.is_absolute():
        path = Path(policy_path).resolve().parent / path
    url = f"http://{host}:{port}"
    _refuse_taken_port(host, port, policy_path)
    process = subprocess.Popen(
        [sys.executable, "-m", "modelroute", "simulator", "--config", str(path),
         "--host", host, "--port", str(port), "--until-stdin-closes"],
        stdin=subprocess.PIPE,
    )  # fmt: skip
    try:
        _wait_until_healthy(process, url, policy_path)
        yield url
    finally:
        _stop(process)


def _refuse_taken_port(host: str, port: int, policy_path: str) -> None:
    """Whatever already listens on the simulator's port is not ours (a simulator left from
    an earlier run, another server): answering requests with it would be silently wrong."""
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise SimulatorError(f"the simulator's host {host!r} does not resolve: {exc}") from None
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            if os.name == "posix":  # as the simulator binds: a port in TIME_WAIT is free
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                raise SimulatorError(
                    f"port {port} on {host}, where {policy_path} starts its simulator, is "
                    f"already in use ({exc.strerror}); stop what holds it or change "
                    "simulator.port in the policy"
                ) from None


def _wait_until_healthy(process: subprocess.Popen[bytes], url: str, policy_path: str) -> None:
    deadline = time.monotonic() + 20
    while not _healthy(url):
        if process.poll() is not None:
            raise SimulatorError(
                f"the simulator for {policy_path} exited (code {process.returncode}) "
                f"before answering on {url}"
            )
        if time.monotonic() > deadline:
            raise SimulatorError(f"the simulator for {policy_path} did not answer on {url}")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    process.stdin.close()  # the simulator's signal to stop
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=0.5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


# uvicorn's httptools protocol with a response's writes joined into one (server/protocol.py).
HTTP_PROTOCOL = "modelroute.server.protocol:GatewayProtocol"


def run_gateway(
    app_target: str | object, host: str, port: int, workers: int, log_config: dict[str, Any]
) -> None:
    """Run uvicorn with ``log_config`` (see ``logconfig.py``) applied in every worker."""
    import uvicorn

    uvicorn.run(
        app_target,  # type: ignore[arg-type]
        host=host,
        port=port,
        workers=workers if isinstance(app_target, str) else None,
        factory=isinstance(app_target, str),
        loop="uvloop",
        http=HTTP_PROTOCOL,
        access_log=False,
        proxy_headers=False,  # we do not read X-Forwarded-*; skip the middleware
        server_header=False,
        log_config=log_config,
        lifespan="on",
        timeout_graceful_shutdown=10,
    )


def build_app(
    policy: Policy,
    *,
    feedback_token_env: str | None = None,
    drift: dict[str, Any] | None = None,
    admin_token_env: str | None = None,
    snapshots_every_s: float | None = 600.0,
    access: dict[str, Any] | None = None,
    responses_ttl_s: float | None = None,
    **options: Any,
) -> Gateway:
    """The gateway ``serve`` runs: the router and its record pipeline (``build_router``), the
    feedback token, read from the environment variable named (never from a file), and with
    ``drift`` (``DriftWatch``'s settings: every_s, current_s, baseline_s, webhook) periodic
    drift checks of the store. With ``admin_token_env`` (the variable holding the admin
    token) the dashboard at ``/ui``, its audit and drift snapshots recomputed every
    ``snapshots_every_s`` seconds. ``access``: ``AccessSettings`` (API keys, the policy
    lifecycle and the admin API, ``serve_access.py``). The Responses API's stored responses
    live where ``state_url`` says (``server/responses_store.py``), ``responses_ttl_s``
    seconds (30 days by default)."""
    from modelroute.serve_access import AccessSettings, access_parts
    from modelroute.server.app import create_app
    from modelroute.server.responses_store import open_responses

    router, metrics = build_router(policy, **options)
    token = os.environ.get(feedback_token_env) if feedback_token_env else None
    services: list[Service] = []
    if drift is not None:
        services.append(drift_watch(policy, options.get("store_url"), metrics, **drift))
    ui = None
    if admin_token_env is not None:
        ui = dashboard_ui(
            os.environ[admin_token_env], options.get("store_url"), policy, snapshots_every_s
        )
        services.append(ui)
    admin_token = os.environ[admin_token_env] if admin_token_env else None
    settings = AccessSettings(**(access or {}))
    gate, admin, more = access_parts(router, options.get("store_url"), admin_token, settings)
    responses = open_responses(
        options.get("state_url", "memory"), ttl_s=responses_ttl_s, on_error=metrics.state_error
    )
    return create_app(
        router, metrics, token or None, [*more, *services], ui, gate, admin, responses
    )


def dashboard_ui(
    token: str, store_url: str | None, policy: Policy | None, snapshots_every_s: float | None
) -> DashboardUI:
    """The dashboard over the store at ``store_url`` (its own connection), behind ``token``."""
    from modelroute.server.ui import PREFIX, DashboardUI
    from modelroute.server.ui_pages import DashboardPages
    from modelroute.server.ui_render import Renderer

    if store_url is None:
        raise ValueError("the dashboard reads the record store: it needs --store")
    render = Renderer(PREFIX)
    pages = DashboardPages(store_url, policy, render, snapshots_every_s=snapshots_every_s)
    return DashboardUI(token, pages, PREFIX, render)


def drift_watch(
    policy: Policy,
    store_url: str | None,
    metrics: MetricsSink,
    *,
    every_s: float,
    current_s: float,
    baseline_s: float,
    webhook: str | None = None,
) -> Service:
    """Drift checks of the gateway's store every ``every_s`` seconds, its alerts at
    ``/metrics`` too."""
    from modelroute.analysis.drift.alerts import Announcer
    from modelroute.analysis.drift.gauge import DriftGauge
    from modelroute.analysis.drift.watch import DriftWatch

    if store_url is None:
        raise ValueError("drift checks read the record store: they need --store")
    announcer = Announcer(webhook=webhook, gauge=DriftGauge(metrics.registry))
    return DriftWatch(
        store_url, policy, announcer, every_s=every_s, current_s=current_s, baseline_s=baseline_s
    )


def build_router(
    policy: Policy,
    *,
    store_url: str | None,
    spool_dir: str,
    content: str,
    traces: str,
    quality_refresh_s: float = 60.0,
    workers: int = 1,
    stats: StatsSource | None = None,
    state_url: str = "memory",
    records_durable: bool = False,
    cache_max_entries: int | None = None,
    cache_max_bytes: int | None = None,
    semantic_max_entries: int | None = None,
) -> tuple[Router, MetricsSink]:
    """The gateway's router with its record pipeline: the store writer (or memory), metrics,
    and traces when asked for; with a store, quality measured from its outcomes, reloaded
    every ``quality_refresh_s`` seconds. Each of ``workers`` processes shadows within its
    share of each route's daily shadow budget. ``stats``: what the planner reads instead
    (benchmarks that must keep one decision). ``state_url``: ``memory`` or a ``redis://`` URL
    where the circuit breakers, rolling statistics, rate limits, budgets and response cache
    are shared (``state/backends.py``), and sessions' pins too (``modelroute.sessions``).
    ``records_durable``: each record journaled to disk before its answer leaves
    (``records/journal.py``). ``cache_max_entries`` and ``cache_max_bytes`` bound the
    in-process response cache; ``semantic_max_entries`` the semantic cache's index (always
    in-process), made when a policy has a route with ``mode: semantic``."""
    from modelroute.router import Router
    from modelroute.sessions import open_pins
    from modelroute.shadow import ShadowMetrics, ShadowSettings, shadowed

    store, records, metrics, extra = _record_sinks(store_url, spool_dir, records_durable, traces)
    shadow = None
    if shadowed(policy):
        shadow = ShadowSettings(metrics=ShadowMetrics(metrics.registry), budget_share=1 / workers)
    backend = _state_backend(policy, state_url, metrics, cache_max_entries, cache_max_bytes)
    if backend.stats is not None:
        extra.append(backend.stats)
    router = Router(
        policy,
        circuits=backend.circuits,
        limits=backend.limits,
        cache=backend.cache,
        pins=open_pins(state_url),
        sink=records,
        sinks=extra,
        store=store,
        content=content,
        shadow=shadow,
        quality_refresh_s=quality_refresh_s,
        stats=stats,
        semantic_max_entries=semantic_max_entries,
    )
    if backend.stats is not None:
        backend.stats.attach(router.rolling)
    metrics.watch(circuit_states=router.breakers.snapshot)
    log.info(
        "policy %s (%s): %d models, %d routes; records: %s; state: %s",
        policy.version or "unversioned",
        policy.short_hash,
        len(policy.models),
        len(policy.routes),
        store_url or "memory",
        state_url.split("@")[-1] if "@" in state_url else state_url,  # no password in logs
    )
    return router, metrics


def _record_sinks(
    store_url: str | None, spool_dir: str, records_durable: bool, traces: str
) -> tuple[Store | None, RecordSink, MetricsSink, list[RecordSink]]:
    """The store (if any), where records are kept (its writer, or memory), the metrics sink,
    and the other sinks every record also goes to (metrics, traces)."""
    from modelroute.records.metrics import MetricsSink
    from modelroute.records.record import MemorySink
    from modelroute.records.stores import open_store
    from modelroute.records.writer import RecordWriter

    store = open_store(store_url) if store_url else None
    records: RecordSink
    if store is not None:
        writer = RecordWriter(store, spool_dir, durable=records_durable)
        metrics = MetricsSink(
            queue_depth=lambda: writer.queue_depth, spool_size=lambda: writer.spool_size
        )
        records = writer
    else:
        metrics, records = MetricsSink(), MemorySink()
    extra: list[RecordSink] = [metrics]
    if traces != "off":
        from modelroute.records.tracing import TracingSink, tracing_from_settings

        extra.append(TracingSink(tracing_from_settings(traces)))
    return store, records, metrics, extra


def _state_backend(
    policy: Policy,
    state_url: str,
    metrics: MetricsSink,
    cache_max_entries: int | None,
    cache_max_bytes: int | None,
) -> StateBackend:
    """The shared (or in-process) state, with the in-process response cache bounded as
    asked."""
    from modelroute.state.backends import open_state

    backend = open_state(state_url, policy, on_error=metrics.state_error)
    if cache_max_entries is None and cache_max_bytes is None:
        return backend
    from modelroute.cache import MemoryCache
    from modelroute.cache.memory import DEFAULT_MAX_BYTES, DEFAULT_MAX_ENTRIES

    memory = MemoryCache(
        max_entries=cache_max_entries or DEFAULT_MAX_ENTRIES,
        max_bytes=cache_max_bytes or DEFAULT_MAX_BYTES,
    )
    return backend._replace(cache=memory)
