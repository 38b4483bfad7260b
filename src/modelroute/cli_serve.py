"""``modelroute serve``: its options, their validation, and the gateway started with them
(in this process, or in uvicorn's worker processes)."""

from __future__ import annotations

import contextlib
import logging.config
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import orjson

from modelroute.cli_common import (
    EXIT_BAD_INPUT,
    fail,
    policy_or_exit,
    print_problems,
    seconds,
    token_env_of,
)
from modelroute.cli_drift import serve_options as drift_serve_options
from modelroute.cli_drift import serve_settings as drift_settings
from modelroute.cli_keys import serve_options as access_serve_options
from modelroute.cli_keys import serve_settings as access_settings
from modelroute.cli_ui import dashboard_options
from modelroute.errors import PolicyError
from modelroute.logconfig import LogFormat
from modelroute.policy import Policy, load_policy


def _options(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Several click options as one decorator (in the order given)."""

    def apply(command: Any) -> Any:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


SERVE_ENV = "MODELROUTE_SERVE"  # the serve options, as JSON, for uvicorn's worker processes


def app_factory() -> Any:
    """For uvicorn workers (``--workers N``): each builds its app from the options the
    ``serve`` command put in the environment."""
    from modelroute.serve import build_app

    options = orjson.loads(os.environ[SERVE_ENV])
    policy = load_policy(options.pop("policy"))
    return build_app(policy, **options)


@click.command()
@click.argument("policy", type=click.Path())
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64))
@click.option(
    "--store",
    "store_url",
    default="./modelroute.db",
    show_default=True,
    help="Where request records go: a SQLite path, sqlite:///path, or a "
    "postgresql:// URL; 'none' keeps the latest 1,000 in memory only.",
)
@click.option(
    "--spool-dir",
    default="./modelroute-spool",
    show_default=True,
    help="Records wait here (append-only files) while the store is unreachable.",
)
@click.option(
    "--records-durable",
    is_flag=True,
    help="Append each record to a journal in --spool-dir before its answer leaves: a killed "
    "process loses no record (a restart on the same --spool-dir stores them).",
)
@click.option(
    "--content",
    type=click.Choice(["off", "hash", "truncated", "full"]),
    default="truncated",
    show_default=True,
    help="How much prompt and answer text the records keep (truncated: 2 KB).",
)
@click.option(
    "--traces",
    type=click.Choice(["off", "console", "otlp"]),
    default="off",
    show_default=True,
    help="OpenTelemetry traces (GenAI semantic conventions).",
)
@click.option(
    "--feedback-token",
    metavar="env:NAME",
    help="The environment variable holding a token that may post feedback on any request "
    "(sent as Authorization: Bearer TOKEN); without one, only the caller that made a "
    "request may rate it.",
)
@click.option(
    "--quality-refresh",
    "quality_refresh",
    default="60s",
    show_default=True,
    metavar="DURATION",
    help="How often measured quality (the outcomes in --store) is reloaded, off the request "
    "path: 30s, 5m, 1h.",
)
@click.option(
    "--state",
    "state_url",
    default="memory",
    show_default=True,
    metavar="memory|redis://...",
    help="Where circuit breakers, rate limits, budgets and the response cache are kept: in "
    "each process, or in Redis, shared by every worker and replica.",
)
@click.option(
    "--cache-max-entries",
    metavar="N",
    help="The in-process response cache's bound on entries (least recently used out first); "
    "default 10000. Not with --state redis://... (the cache is Redis's).",
)
@click.option(
    "--cache-max-bytes",
    metavar="SIZE",
    help="The in-process response cache's bound on the entries' encoded size: 64MB, 512KB, "
    "or bytes; default 64MB. An answer larger than a tenth of it is not kept.",
)
@click.option(
    "--semantic-max-entries",
    metavar="N",
    help="The semantic cache's index (routes with mode: semantic; in each process, with any "
    "--state): its bound on entries, least recently used out first; default 10000. Its "
    "entries point at answers in the response cache: one whose answer has left that cache "
    "(pushed out, expired) no longer answers a paraphrase and is dropped when a lookup finds "
    "it, so an index larger than the response cache holds dead entries until then.",
)
@click.option(
    "--responses-ttl",
    default="720h",
    show_default=True,
    metavar="DURATION",
    help="How long the Responses API's stored responses are kept (GET /v1/responses/{id}, "
    "previous_response_id): 30m, 24h, 720h.",
)
@_options(*drift_serve_options)
@_options(*dashboard_options)
@_options(*access_serve_options)
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
    help="Level of the modelroute.* and uvicorn loggers.",
)
@click.option(
    "--log-format",
    default="text",
    show_default=True,
    type=click.Choice(["text", "json"]),
    help="Log lines as text or as one JSON object a line; each has a timestamp and logger name.",
)
def serve(
    policy: str,
    host: str,
    port: int,
    workers: int,
    store_url: str,
    spool_dir: str,
    records_durable: bool,
    content: str,
    traces: str,
    feedback_token: str | None,
    quality_refresh: str,
    state_url: str,
    cache_max_entries: str | None,
    cache_max_bytes: str | None,
    semantic_max_entries: str | None,
    responses_ttl: str,
    drift_every: str | None,
    drift_since: str,
    drift_baseline: str,
    drift_webhook: str | None,
    admin_token: str | None,
    snapshots_every: str,
    keys_mode: str,
    keys_refresh: str,
    canary_path: str | None,
    canary_percent: float,
    canary_sticky: str,
    policy_sync: str | None,
    log_level: str,
    log_format: LogFormat,
) -> None:
    """Serve POLICY as an OpenAI- and Anthropic-compatible gateway (and, with
    --admin-token, the dashboard at /ui)."""
    from modelroute.logconfig import Redactor, log_config

    loaded = policy_or_exit(policy)
    _warn(loaded)
    store = None if store_url == "none" else _checked_store_url(store_url)
    options: dict[str, Any] = {
        "store_url": store, "spool_dir": spool_dir, "content": content, "traces": traces,
        "quality_refresh_s": seconds("--quality-refresh", quality_refresh),
        "workers": workers,  # each keeps its share of the daily shadow budgets
        "state_url": _checked_state_url(state_url, workers),
        **_cache_limits(cache_max_entries, cache_max_bytes, state_url),
        "responses_ttl_s": seconds("--responses-ttl", responses_ttl),
    }  # fmt: skip
    if semantic_max_entries is not None:  # the index is in each process, with any --state
        options["semantic_max_entries"] = _whole("--semantic-max-entries", semantic_max_entries)
    if records_durable:
        if store is None:
            fail("--records-durable journals records on their way to a store; give --store")
        options["records_durable"] = True
    options["feedback_token_env"] = token_env = token_env_of("--feedback-token", feedback_token)
    options["drift"] = drift_settings(
        drift_every, drift_since, drift_baseline, drift_webhook, store
    )
    options["admin_token_env"] = admin_env = token_env_of("--admin-token", admin_token)
    if admin_env is not None and store is None:
        fail("--admin-token: the dashboard reads the record store; it needs a --store")
    options["snapshots_every_s"] = seconds("--snapshots-every", snapshots_every)
    if canary_path is not None:
        policy_or_exit(canary_path)  # a canary that does not load stops here
    options["access"] = access_settings(
        policy, store, keys_mode, seconds("--keys-refresh", keys_refresh), canary_path,
        canary_percent, canary_sticky, policy_sync, options["state_url"],
    )  # fmt: skip
    keys = _secrets(loaded, token_env, admin_env)
    logging_config = log_config(log_level, log_format, keys)
    # Applied here for what runs before uvicorn starts; uvicorn applies it again per worker.
    logging.config.dictConfig(logging_config)
    with _policy_simulator(loaded, policy) as sim_url:
        if sim_url:
            click.echo(f"simulator: {sim_url}", err=True)
        click.echo(
            f"modelroute: serving {policy} (policy {loaded.short_hash}) on "
            f"http://{host}:{port}; records: {Redactor(keys)(store_url)}",
            err=True,
        )
        _run_gateway(loaded, policy, options, host, port, workers, logging_config)


def _warn(policy: Policy) -> None:
    """The policy's warnings, and the API keys its models need that are not set."""
    from modelroute.policy.secrets import missing_api_keys

    for warning in policy.warnings:
        click.echo(warning.render(), err=True)
    for name in missing_api_keys(policy):
        click.echo(
            f"warning: environment variable {name} is not set; models using it will "
            "fail with an auth error",
            err=True,
        )


def _secrets(policy: Policy, *token_envs: str | None) -> list[str]:
    """What every log line redacts: the policy's API keys and the tokens' values."""
    from modelroute.policy.secrets import resolve_api_keys

    keys = [key for key in resolve_api_keys(policy).values() if key]
    for env in token_envs:
        if env is not None:  # redacted from every log line, as API keys are
            keys.append(os.environ[env])
    return keys


_SIZE_UNITS = {"": 1, "b": 1, "kb": 1000, "mb": 1000**2, "gb": 1000**3,
               "kib": 1024, "mib": 1024**2, "gib": 1024**3}  # fmt: skip


def _cache_limits(entries: str | None, size: str | None, state_url: str) -> dict[str, int]:
    """``--cache-max-entries`` and ``--cache-max-bytes``: whole numbers above zero (a size
    may carry a unit), for the in-process cache only."""
    from modelroute.state.backends import MEMORY

    limits: dict[str, int] = {}
    if entries is not None:
        limits["cache_max_entries"] = _whole("--cache-max-entries", entries)
    if size is not None:
        found = re.fullmatch(r"(\d+)\s*([a-z]*)", size.strip().lower())
        if found is None or found.group(2) not in _SIZE_UNITS or int(found.group(1)) < 1:
            fail(f"--cache-max-bytes: {size!r} is not a size above zero (64MB, 512KB, 1000000)")
        assert found is not None
        limits["cache_max_bytes"] = int(found.group(1)) * _SIZE_UNITS[found.group(2)]
    if limits and state_url != MEMORY:
        given = " and ".join("--" + name.replace("_", "-") for name in limits)
        fail(
            f"{given}: bound the in-process response cache; with --state redis://... the "
            "cache lives in Redis (bound it with Redis's maxmemory)"
        )
    return limits


def _whole(option: str, value: str) -> int:
    """An entry bound: a whole number above zero."""
    if not re.fullmatch(r"\d+", value.strip()) or int(value) < 1:
        fail(f"{option}: {value!r} is not a whole number above zero")
    return int(value)


def _checked_state_url(url: str, workers: int) -> str:
    from modelroute.state.backends import MEMORY, check_state_url

    try:
        check_state_url(url)
    except ValueError as exc:
        fail(f"--state: {exc}")
    if url == MEMORY and workers > 1:
        click.echo(
            f"warning: --state memory with --workers {workers}: each worker keeps its own "
            "circuit breakers, rate limits, budgets and stored responses (a limit admits up "
            f"to {workers} times its value); use --state redis://... to share them",
            err=True,
        )
    return url


def _checked_store_url(url: str) -> str:
    """A store URL nothing could ever connect to is an error now; one whose database is
    merely unreachable is not (the gateway serves and spools records until it is back)."""
    from modelroute.records.stores import open_store

    try:
        open_store(url)
    except ValueError as exc:
        fail(f"--store: {exc}")
    return url


@contextlib.contextmanager
def _policy_simulator(policy: Policy, path: str) -> Iterator[str | None]:
    from modelroute.serve import SimulatorError, policy_simulator

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(policy_simulator(policy, path))
        except SimulatorError as exc:
            fail(str(exc))
        yield url


def _run_gateway(
    policy: Policy,
    path: str,
    options: dict[str, Any],
    host: str,
    port: int,
    workers: int,
    logging_config: dict[str, Any],
) -> None:
    from modelroute.serve import build_app, run_gateway

    if workers == 1:
        try:  # loads the providers the policy names: an unknown or broken kind stops here
            app = build_app(policy, **options)
        except PolicyError as exc:
            print_problems(exc)
            sys.exit(EXIT_BAD_INPUT)
        run_gateway(app, host, port, 1, logging_config)
        return
    with tempfile.TemporaryDirectory(prefix="modelroute-metrics-") as metrics_dir:
        # Workers share their metrics through files here (prometheus multiprocess mode).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        options = {"policy": str(Path(path).resolve()), **options}
        os.environ[SERVE_ENV] = orjson.dumps(options).decode()
        run_gateway("modelroute.cli_serve:app_factory", host, port, workers, logging_config)
