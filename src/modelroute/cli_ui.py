"""``modelroute ui``: the dashboard over a record store, without serving traffic; and the
dashboard's options of ``modelroute serve``."""

from __future__ import annotations

import logging.config
from pathlib import Path

import click

from modelroute.cli_records import EXIT_BAD_INPUT, store_option
from modelroute.logconfig import LogFormat

SNAPSHOTS_EVERY = "10m"

admin_token_option = click.option(
    "--admin-token",
    metavar="env:NAME",
    help="The environment variable holding the admin token that opens the dashboard at /ui "
    "(a login form sets a cookie; scripts send Authorization: Bearer TOKEN). Without it the "
    "dashboard is off.",
)
snapshots_option = click.option(
    "--snapshots-every",
    default=SNAPSHOTS_EVERY,
    show_default=True,
    metavar="DURATION",
    help="How often the dashboard's audit and drift results are recomputed in the background "
    "(pages only read the latest): 5m, 1h.",
)
# ``modelroute serve``'s dashboard options
dashboard_options = (admin_token_option, snapshots_option)


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


def _sqlite_exists(url: str) -> None:
    """A SQLite store that is not there is a typo, not an empty dashboard."""
    if "://" in url and not url.startswith("sqlite://"):
        return
    path = url.split("://", 1)[-1].removeprefix("/") if "://" in url else url
    if not Path(path).exists():
        _fail(f"no records at {path} (start `modelroute serve` there, or pass --store)")


@click.command("ui")
@store_option
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(),
    help="The policy in force: the routes page shows its constraints and candidates.",
)
@admin_token_option
@snapshots_option
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8081, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--log-level",
    default="warning",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
@click.option(
    "--log-format", default="text", show_default=True, type=click.Choice(["text", "json"])
)
def ui(
    store_url: str,
    policy_path: str | None,
    admin_token: str | None,
    snapshots_every: str,
    host: str,
    port: int,
    log_level: str,
    log_format: LogFormat,
) -> None:
    """Browse a record store in the dashboard (at /ui), without serving traffic."""
    import os

    from modelroute.cli_analysis import load_policy_or_exit
    from modelroute.cli_common import seconds, token_env_of
    from modelroute.logconfig import Redactor, log_config
    from modelroute.records.stores import open_store
    from modelroute.serve import dashboard_ui, run_gateway
    from modelroute.server.ui_alone import DashboardAlone

    if admin_token is None:
        _fail("--admin-token env:NAME is required: the dashboard is never open without a token")
    name = token_env_of("--admin-token", admin_token)
    assert name is not None
    every = seconds("--snapshots-every", snapshots_every)
    _sqlite_exists(store_url)
    policy = load_policy_or_exit(policy_path) if policy_path else None
    token = os.environ[name]
    try:
        open_store(store_url)  # a URL nothing could connect to is an error now
    except ValueError as exc:
        _fail(f"--store: {exc}")
    app = DashboardAlone(dashboard_ui(token, store_url, policy, every))
    logging_config = log_config(log_level, log_format, [token])
    logging.config.dictConfig(logging_config)
    click.echo(
        f"modelroute: dashboard of {Redactor([token])(store_url)} on http://{host}:{port}/ui/",
        err=True,
    )
    run_gateway(app, host, port, 1, logging_config)
