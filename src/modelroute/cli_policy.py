"""``modelroute check`` and ``modelroute explain``: a policy validated, and the decision it
makes for one request, with each rejected model's reason."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click
import orjson

from modelroute.cli_common import EXIT_BAD_INPUT, fail, policy_or_exit, print_problems, read_json
from modelroute.errors import PolicyError, RequestError, UnknownRouteError
from modelroute.features import request_context
from modelroute.learned.decide import decide, prompt_text
from modelroute.planner import StatsSnapshot
from modelroute.policy import load_policy
from modelroute.render import render_check, render_decision


@click.command()
@click.argument("policies", nargs=-1, required=True, type=click.Path(dir_okay=True))
@click.option("--quiet", "-q", is_flag=True, help="Print only problems.")
def check(policies: Sequence[str], quiet: bool) -> None:
    """Validate POLICY files; print a summary of their models and routes."""
    failed = 0
    for path in policies:
        try:
            policy = load_policy(path)
        except PolicyError as exc:
            print_problems(exc)
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
        fail("the request file must hold a JSON object (an OpenAI chat request)")
    body: Any = data
    head: Any = {}
    if "body" in data and "messages" not in data:
        body, head = data["body"], data.get("headers") or {}
        if not isinstance(body, dict) or not isinstance(head, dict):
            fail("'body' and 'headers' in the request file must be objects")
    merged = {str(k).lower(): str(v) for k, v in head.items()}
    for item in headers:
        name, sep, value = item.partition(":")
        if not sep:
            fail(f"--header expects 'Name: value', got {item!r}")
        merged[name.strip().lower()] = value.strip()
    return body, merged


@click.command()
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
    loaded = policy_or_exit(policy)
    body, head = _request_from_file(read_json(request_path, "request"), headers)
    stats = StatsSnapshot()
    if stats_path:
        raw = read_json(stats_path, "stats")
        if not isinstance(raw, dict):
            fail(f"stats file {stats_path} must hold a JSON object")
        try:
            stats = StatsSnapshot.from_dict(raw)
        except (ValueError, TypeError) as exc:
            fail(f"stats file {stats_path}: {exc}")
    if store_url:
        from modelroute.cli_outcomes import measured_stats

        stats = measured_stats(store_url, stats, loaded)
    try:
        decision = decide(request_context(body, head), prompt_text(body), loaded, stats)
    except UnknownRouteError as exc:
        fail(f"{exc}; routes and aliases: {', '.join(exc.known)}")
    except RequestError as exc:
        fail(f"bad request in {request_path}: {exc}")
    if as_json:
        click.echo(orjson.dumps(decision.to_dict(), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render_decision(decision, loaded))
