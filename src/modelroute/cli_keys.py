"""``modelroute keys create|list|revoke``: API keys in the record store's database.

``create`` prints the new key once, alone on stdout (so a script can capture it); it is
stored only as a hash and cannot be shown again. Everything else goes to stderr.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

import click
import orjson

from modelroute.identity import Budget, RateLimits

T = TypeVar("T")
EXIT_BAD_INPUT = 2
DEFAULT_STORE = "./modelroute.db"


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


def _run(url: str, action: Callable[[Any], Coroutine[Any, Any, T]]) -> T:
    from modelroute.keys import KeyRefused, open_key_store

    try:
        store = open_key_store(url)
    except ValueError as exc:
        _fail(f"--store: {exc}")
        raise
    try:
        return asyncio.run(action(store))
    except KeyRefused as exc:
        _fail(str(exc))
    except (OSError, ValueError) as exc:
        _fail(f"cannot use the key store {url}: {exc}")
    except Exception as exc:  # asyncpg's errors (unreachable, refused): one line, no traceback
        _fail(f"cannot use the key store {url}: {type(exc).__name__}: {exc}")
    raise AssertionError("unreachable")


store_option = click.option(
    "--store",
    "store_url",
    default=DEFAULT_STORE,
    show_default=True,
    envvar="MODELROUTE_STORE",
    help="The database holding the keys (the gateway's --store): a SQLite path, "
    "sqlite:///path, or a postgresql:// URL.",
)


@click.group()
def keys() -> None:
    """Create, list and revoke the API keys clients present to the gateway."""


@keys.command()
@click.option("--name", required=True, help="Who or what holds the key (unique among active keys).")
@click.option("--team", help="The team it spends for (budgets may be per team).")
@click.option(
    "--route", "routes", multiple=True, help="A route it may use (repeat); default: every route."
)
@click.option("--budget-usd", type=float, help="Its own spend ceiling per period, in USD.")
@click.option(
    "--budget-period", type=click.Choice(["daily", "monthly"]), default="monthly",
    show_default=True,
)  # fmt: skip
@click.option("--rpm", type=click.IntRange(min=1), help="Its own requests per minute.")
@click.option("--tpm", type=click.IntRange(min=1), help="Its own tokens per minute.")
@store_option
def create(
    name: str,
    team: str | None,
    routes: Sequence[str],
    budget_usd: float | None,
    budget_period: str,
    rpm: int | None,
    tpm: int | None,
    store_url: str,
) -> None:
    """Create a key: printed once on stdout, stored only as a hash."""
    from modelroute.keys import KeySpec

    try:
        budget = None if budget_usd is None else Budget(budget_usd, budget_period)  # type: ignore[arg-type]
        spec = KeySpec(
            name, team, frozenset(routes) if routes else None, budget, RateLimits(rpm, tpm)
        )
    except ValueError as exc:
        _fail(str(exc))
        raise
    secret, record = _run(store_url, lambda store: store.create(spec))
    click.echo(secret)
    click.echo(
        f"created key {record.key_id} ({name}); it is shown only this once: keep it now",
        err=True,
    )


@keys.command(name="list")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array.")
@store_option
def list_keys(show_all: bool, as_json: bool, store_url: str) -> None:
    """List keys (ids, names, limits; never the keys themselves)."""
    records = _run(store_url, lambda store: store.all())
    shown = [r.to_dict() for r in records if show_all or r.active]
    if as_json:
        click.echo(orjson.dumps(shown, option=orjson.OPT_INDENT_2).decode())
        return
    if not shown:
        click.echo("no keys" + ("" if show_all else " (active)"), err=True)
        return
    click.echo(f"{'KEY ID':<17} {'NAME':<20} {'TEAM':<12} {'ROUTES':<20} {'BUDGET':<16} LIMITS")
    for key in shown:
        click.echo(_line(key))


def _line(key: dict[str, Any]) -> str:
    routes = ",".join(key["routes"]) if key["routes"] else "*"
    budget = "-"
    if key["budget_usd"] is not None:
        budget = f"${key['budget_usd']:g}/{key['budget_period']}"
    limits = ", ".join(
        f"{value} {unit}"
        for value, unit in ((key["requests_per_minute"], "rpm"), (key["tokens_per_minute"], "tpm"))
        if value is not None
    )
    revoked = ""
    if key["revoked_at"] is not None:
        revoked = " revoked " + time.strftime("%Y-%m-%d %H:%M", time.gmtime(key["revoked_at"]))
    return (
        f"{key['key_id']:<17} {key['name']:<20} {key['team'] or '-':<12} {routes:<20} "
        f"{budget:<16} {limits or '-'}{revoked}"
    )


@keys.command()
@click.argument("key")
@store_option
def revoke(key: str, store_url: str) -> None:
    """Revoke KEY (its key id or name): refused by every replica within its refresh."""
    record = _run(store_url, lambda store: store.revoke(key))
    click.echo(f"revoked key {record.key_id} ({record.spec.name})", err=True)


def admin_token(reference: str | None) -> str | None:
    """The NAME of ``--admin-token env:NAME`` once it is known to be set."""
    if reference is None:
        return None
    name = reference.removeprefix("env:")
    if not reference.startswith("env:") or not name.isidentifier():
        _fail("--admin-token takes env:NAME, the environment variable holding the token")
    if not os.environ.get(name):
        _fail(f"--admin-token: environment variable {name} is not set")
    return name


REDIS_SCHEMES = ("redis://", "rediss://", "unix://")

# ``modelroute serve``'s options for keys and policy rollouts
serve_options = (
    click.option(
        "--keys",
        "keys_mode",
        type=click.Choice(["off", "optional", "required"]),
        default="off",
        show_default=True,
        help="Check API keys (modelroute keys create) on /v1/*: required answers 401 without "
        "an active key; optional gives known keys their limits and lets others pass.",
    ),
    click.option(
        "--keys-refresh",
        default="5s",
        show_default=True,
        metavar="DURATION",
        help="How often the active keys are re-read from --store (a revocation made "
        "elsewhere takes effect within this).",
    ),
    click.option(
        "--canary",
        "canary_path",
        type=click.Path(),
        help="A new policy serving --canary-percent of the traffic beside POLICY; records "
        "say which arm served them (modelroute compare).",
    ),
    click.option("--canary-percent", type=click.FloatRange(0, 100), default=5.0, show_default=True),
    click.option(
        "--canary-sticky",
        default="key",
        show_default=True,
        metavar="key|field:NAME",
        help="What keeps a caller on one arm: its API key, or a request field (field:user, "
        "field:metadata.user).",
    ),
    click.option(
        "--policy-sync",
        metavar="redis://HOST:PORT/DB|off",
        help="Publish policy changes (SIGHUP, admin API) through Redis and apply those of "
        "other replicas: all converge on one policy hash. Default: the --state URL when it "
        "is redis:// (its ?prefix= too); off: this replica keeps its own policy.",
    ),
)


def serve_settings(
    policy_path: str,
    store_url: str | None,
    keys_mode: str,
    keys_refresh: float,
    canary_path: str | None,
    canary_percent: float,
    canary_sticky: str,
    policy_sync: str | None,
    state_url: str = "memory",
) -> dict[str, Any]:
    """``serve``'s options as ``build_app``'s ``access`` settings (``AccessSettings``); a
    canary policy that does not load stops here with its problems. Policies are synced
    through ``--policy-sync``, else through a ``redis://`` ``state_url``."""
    from pathlib import Path

    from modelroute.canary import parse_sticky

    if keys_mode != "off" and store_url is None:
        _fail("--keys: API keys are kept in the record store; give --store (not 'none')")
    try:
        parse_sticky(canary_sticky)
    except ValueError as exc:
        _fail(f"--canary-sticky: {exc}")
    if policy_sync is None and state_url.startswith(REDIS_SCHEMES):
        policy_sync = state_url
    elif policy_sync == "off":
        policy_sync = None
    elif policy_sync is not None and not policy_sync.startswith(REDIS_SCHEMES):
        _fail("--policy-sync takes a redis:// URL, or off")
    return {
        "keys": keys_mode, "keys_refresh_s": keys_refresh,
        "policy_path": str(Path(policy_path).resolve()),
        "canary_path": None if canary_path is None else str(Path(canary_path).resolve()),
        "canary_percent": canary_percent, "canary_sticky": canary_sticky,
        "policy_sync_url": policy_sync,
    }  # fmt: skip
