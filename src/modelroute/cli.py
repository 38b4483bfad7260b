"""The ``modelroute`` command. Errors carry their exit code: 2 for bad input, never a traceback."""

from __future__ import annotations

import contextlib
import logging.config
import os
import re
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
import orjson

from modelroute.cli_drift import serve_options as drift_serve_options
from modelroute.cli_drift import serve_settings as drift_settings
from modelroute.cli_keys import serve_options as access_serve_options
from modelroute.cli_keys import serve_settings as access_settings
from modelroute.cli_ui import dashboard_options
from modelroute.errors import PolicyError, RequestError, UnknownRouteError
from modelroute.features import request_context
from modelroute.learned.decide import decide, prompt_text
from modelroute.logconfig import LogFormat
from modelroute.planner import StatsSnapshot
from modelroute.policy import Policy, load_policy
from modelroute.render import render_check, render_decision

EXIT_BAD_INPUT = 2


class UsageFailure(click.ClickException):
    """A user error: printed as one clear message, exit code 2."""

    exit_code = EXIT_BAD_INPUT

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)


def _fail(message: str) -> NoReturn:
    raise UsageFailure(message)


def _policy_or_exit(path: str) -> Policy:
    try:
        return load_policy(path)
    except PolicyError as exc:
        _print_problems(exc)
        sys.exit(EXIT_BAD_INPUT)


def _print_problems(exc: PolicyError) -> None:
    errors = [p for p in exc.problems if p.severity == "error"]
    for problem in exc.problems:
        click.echo(problem.render(), err=True)
    click.echo(f"{len(errors)} error(s) in {exc.problems[0].file}", err=True)


def _read_json(path: str, what: str) -> Any:
    try:
        return orjson.loads(Path(path).read_bytes())
    except FileNotFoundError:
        _fail(f"{what} file not found: {path}")
    except IsADirectoryError:
        _fail(f"{what} path is a directory: {path}")
    except orjson.JSONDecodeError as exc:
        _fail(f"{what} file {path} is not valid JSON: {exc}")


def _options(*decorators: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Several click options as one decorator (in the order given)."""

    def apply(command: Any) -> Any:
        for decorator in reversed(decorators):
            command = decorator(command)
        return command

    return apply


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="modelroute")
def main() -> None:
    """Route each LLM request to the model best suited to it, by a declared policy."""


@main.command()
@click.argument("policies", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--quiet", "-q", is_flag=True, help="Print only problems.")
def check(policies: Sequence[str], quiet: bool) -> None:
    """Validate POLICY files; print a summary of their models and routes."""
    failed = 0
    for path in policies:
        try:
            policy = load_policy(path)
        except PolicyError as exc:
            _print_problems(exc)
            failed += 1
            continue
        for warning in policy.warnings:
            click.echo(warning.render(), err=True)
        if not quiet:
            click.echo(render_check(policy))
    if failed:
        sys.exit(EXIT_BAD_INPUT)


def _request_from_file(data: Any, headers: Sequence[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """A request file is an OpenAI chat body, or ``{"body": {...}, "headers": {...}}``."""
    if not isinstance(data, dict):
        _fail("the request file must hold a JSON object (an OpenAI chat request)")
    body: Any = data
    head: Any = {}
    if "body" in data and "messages" not in data:
        body, head = data["body"], data.get("headers") or {}
        if not isinstance(body, dict) or not isinstance(head, dict):
            _fail("'body' and 'headers' in the request file must be objects")
    merged = {str(k).lower(): str(v) for k, v in head.items()}
    for item in headers:
        name, sep, value = item.partition(":")
        if not sep:
            _fail(f"--header expects 'Name: value', got {item!r}")
        merged[name.strip().lower()] = value.strip()
    return body, merged


@main.command()
@click.argument("policy", type=click.Path())
@click.option(
    "--request",
    "request_path",
    required=True,
    type=click.Path(),
    help="An OpenAI chat request body as JSON (or {body, headers}).",
)
@click.option("--stats", "stats_path", type=click.Path(), help="Measured statistics as JSON.")
@click.option(
    "--store",
    "store_url",
    help="A record store whose outcomes give measured quality (over --stats), as a gateway "
    "serving from it reads them: a SQLite path or a postgresql:// URL.",
)
@click.option("--header", "-H", "headers", multiple=True, help="Extra header, 'Name: value'.")
@click.option("--json", "as_json", is_flag=True, help="Print the decision as JSON.")
def explain(
    policy: str,
    request_path: str,
    stats_path: str | None,
    store_url: str | None,
    headers: Sequence[str],
    as_json: bool,
) -> None:
    """Show which model POLICY picks for a request, and why each other model was rejected."""
    loaded = _policy_or_exit(policy)
    body, head = _request_from_file(_read_json(request_path, "request"), headers)
    stats = StatsSnapshot()
    if stats_path:
        raw = _read_json(stats_path, "stats")
        if not isinstance(raw, dict):
            _fail(f"stats file {stats_path} must hold a JSON object")
        try:
            stats = StatsSnapshot.from_dict(raw)
        except (ValueError, TypeError) as exc:
            _fail(f"stats file {stats_path}: {exc}")
    if store_url:
        from modelroute.cli_outcomes import measured_stats

        stats = measured_stats(store_url, stats, loaded)
    try:
        decision = decide(request_context(body, head), prompt_text(body), loaded, stats)
    except UnknownRouteError as exc:
        _fail(f"{exc}; routes and aliases: {', '.join(exc.known)}")
    except RequestError as exc:
        _fail(f"bad request in {request_path}: {exc}")
    if as_json:
        click.echo(orjson.dumps(decision.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render_decision(decision, loaded))


SERVE_ENV = "MODELROUTE_SERVE"  # the serve options, as JSON, for uvicorn's worker processes


def app_factory() -> Any:
    """For uvicorn workers (``--workers N``): each builds its app from the options the
    ``serve`` command put in the environment."""
    from modelroute.serve import build_app

    options = orjson.loads(os.environ[SERVE_ENV])
    policy = load_policy(options.pop("policy"))
    return build_app(policy, **options)


@main.command()
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
    from modelroute.policy.secrets import missing_api_keys, resolve_api_keys

    loaded = _policy_or_exit(policy)
    for warning in loaded.warnings:
        click.echo(warning.render(), err=True)
    for name in missing_api_keys(loaded):
        click.echo(
            f"warning: environment variable {name} is not set; models using it will "
            "fail with an auth error",
            err=True,
        )
    store = None if store_url == "none" else _checked_store_url(store_url)
    options: dict[str, Any] = {
        "store_url": store, "spool_dir": spool_dir, "content": content, "traces": traces,
        "quality_refresh_s": _seconds("--quality-refresh", quality_refresh),
        "workers": workers,  # each keeps its share of the daily shadow budgets
        "state_url": _checked_state_url(state_url, workers),
    }  # fmt: skip
    if records_durable:
        if store is None:
            _fail("--records-durable journals records on their way to a store; give --store")
        options["records_durable"] = True
    options["feedback_token_env"] = token_env = token_env_of("--feedback-token", feedback_token)
    options["drift"] = drift_settings(
        drift_every, drift_since, drift_baseline, drift_webhook, store
    )
    options["admin_token_env"] = admin_env = token_env_of("--admin-token", admin_token)
    if admin_env is not None and store is None:
        _fail("--admin-token: the dashboard reads the record store; it needs a --store")
    options["snapshots_every_s"] = _seconds("--snapshots-every", snapshots_every)
    if canary_path is not None:
        _policy_or_exit(canary_path)  # a canary that does not load stops here
    options["access"] = access_settings(
        policy, store, keys_mode, _seconds("--keys-refresh", keys_refresh), canary_path,
        canary_percent, canary_sticky, policy_sync, options["state_url"],
    )  # fmt: skip
    keys = [key for key in resolve_api_keys(loaded).values() if key]
    for env in (token_env, admin_env):
        if env is not None:  # redacted from every log line, as API keys are
            keys.append(os.environ[env])
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


def _seconds(option: str, text: str) -> float:
    """'30s', '5m', '1h' or plain seconds, above zero."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([smh]?)", text.strip())
    if not found or float(found.group(1)) <= 0:
        _fail(f"{option}: {text!r} is not a duration above zero (30s, 5m, 1h)")
    assert found is not None
    return float(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[found.group(2)]


def _checked_state_url(url: str, workers: int) -> str:
    from modelroute.state.backends import MEMORY, check_state_url

    try:
        check_state_url(url)
    except ValueError as exc:
        _fail(f"--state: {exc}")
    if url == MEMORY and workers > 1:
        click.echo(
            f"warning: --state memory with --workers {workers}: each worker keeps its own "
            "circuit breakers, rate limits and budgets (a limit admits up to "
            f"{workers} times its value); use --state redis://... to share them",
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
        _fail(f"--store: {exc}")
    return url


@contextlib.contextmanager
def _policy_simulator(policy: Policy, path: str) -> Iterator[str | None]:
    from modelroute.serve import SimulatorError, policy_simulator

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(policy_simulator(policy, path))
        except SimulatorError as exc:
            _fail(str(exc))
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
            _print_problems(exc)
            sys.exit(EXIT_BAD_INPUT)
        run_gateway(app, host, port, 1, logging_config)
        return
    with tempfile.TemporaryDirectory(prefix="modelroute-metrics-") as metrics_dir:
        # Workers share their metrics through files here (prometheus multiprocess mode).
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
        options = {"policy": str(Path(path).resolve()), **options}
        os.environ[SERVE_ENV] = orjson.dumps(options).decode()
        run_gateway("modelroute.cli:app_factory", host, port, workers, logging_config)


def token_env_of(option: str, reference: str | None) -> str | None:
    """The NAME of ``--feedback-token env:NAME`` (or ``--admin-token``), once the variable is
    known to be set. The token itself never appears on the command line, in a file or in a
    log."""
    if reference is None:
        return None
    name = reference.removeprefix("env:")
    if not reference.startswith("env:") or not name.isidentifier():
        _fail(f"{option} takes env:NAME, the environment variable holding the token")
    if not os.environ.get(name):
        _fail(f"{option}: environment variable {name} is not set")
    return name


@main.command()
@click.option(
    "--config",
    "config",
    required=True,
    type=click.Path(),
    help="The simulator's YAML configuration.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8900, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--until-stdin-closes",
    is_flag=True,
    help="Stop when stdin reaches end of file (ignoring Ctrl-C): for a parent process that "
    "holds the pipe, so the simulator never outlives it.",
)
def simulator(config: str, host: str, port: int, until_stdin_closes: bool) -> None:
    """Run the fault-injecting upstream simulator (OpenAI and Anthropic wire formats)."""
    from pydantic import ValidationError

    from modelroute.testing import run_simulator

    if not Path(config).is_file():
        _fail(f"simulator config not found: {config}")
    try:
        run_simulator(
            config,
            host,
            port,
            ready=lambda url: click.echo(f"simulator: listening on {url}", err=True),
            until_stdin_closes=until_stdin_closes,
        )
    except ValidationError as exc:
        _fail(f"invalid simulator config {config}:\n{exc}")


def _register_record_commands() -> None:
    from modelroute.cli_analysis import replay
    from modelroute.cli_audit import audit
    from modelroute.cli_calibrate import calibrate
    from modelroute.cli_compare import compare
    from modelroute.cli_drift import drift
    from modelroute.cli_eval import eval_command
    from modelroute.cli_keys import keys
    from modelroute.cli_outcomes import outcomes
    from modelroute.cli_records import export, logs, show, stats
    from modelroute.cli_simulate import simulate
    from modelroute.cli_train import train_command
    from modelroute.cli_ui import ui

    commands = (
        logs, show, stats, export, replay, outcomes, eval_command, calibrate, audit, drift, ui,
        keys, compare, simulate, train_command,
    )  # fmt: skip
    for command in commands:
        main.add_command(command)


_register_record_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
