"""``modelroute drift``: version changes, regressions, task-mix shift and routing drift in the
record store, the current window against a baseline. Exit 1 when anything alerts, 0 when
nothing does, 2 on bad input."""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

import click
import orjson

from modelroute.cli_analysis import load_policy_or_exit
from modelroute.cli_records import EXIT_BAD_INPUT, parse_since, store_option, with_store
from modelroute.policy import Policy

if TYPE_CHECKING:
    from modelroute.analysis.drift import Report, Thresholds, Windows
    from modelroute.records.stores import Store

EXIT_ALERT = 1
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


def _duration(option: str, text: str) -> float:
    found = _DURATION.fullmatch(text.strip())
    if found is None or float(found.group(1)) <= 0:
        _fail(f"{option}: {text!r} is not a duration above zero (30m, 24h, 7d)")
    assert found is not None
    return float(found.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[found.group(2)]


# ``modelroute serve``'s drift options (off unless --drift-every is given)
serve_options = (
    click.option(
        "--drift-every",
        metavar="DURATION",
        help="Check the store for drift this often, off the request path (5m, 1h); off by "
        "default. Alerts: log lines, /metrics and --drift-webhook, once per condition.",
    ),
    click.option(
        "--drift-since",
        default="24h",
        show_default=True,
        metavar="DURATION",
        help="The current window of a drift check.",
    ),
    click.option(
        "--drift-baseline",
        default="7d",
        show_default=True,
        metavar="DURATION",
        help="The baseline window it is compared with (just before the current one).",
    ),
    click.option("--drift-webhook", metavar="URL", help="POST each new drift alert here."),
)


def serve_settings(
    every: str | None, since: str, baseline: str, webhook: str | None, store_url: str | None
) -> dict[str, Any] | None:
    """``serve``'s drift options as ``build_app``'s ``drift`` settings (None: no checks)."""
    if every is None:
        if webhook is not None:
            _fail("--drift-webhook needs --drift-every (how often to check)")
        return None
    if store_url is None:
        _fail("--drift-every reads the record store: give --store (not 'none')")
    return {
        "every_s": _duration("--drift-every", every),
        "current_s": _duration("--drift-since", since),
        "baseline_s": _duration("--drift-baseline", baseline),
        "webhook": _webhook(webhook),
    }


def _policy(path: str | None) -> Policy | None:
    return None if path is None else load_policy_or_exit(path)


def _windows(since: str, baseline: str, now: float) -> Windows:
    from modelroute.analysis.drift import Windows

    start = parse_since(since, now)
    assert start is not None
    if start >= now:
        _fail(f"--since {since!r} leaves no current window (it starts at or after now)")
    return Windows.ending(now, now - start, _duration("--baseline", baseline))


def _thresholds(alpha: float, min_requests: int, min_outcomes: int) -> Thresholds:
    from modelroute.analysis.drift import Thresholds

    try:
        return Thresholds(alpha=alpha, min_requests=min_requests, min_outcomes=min_outcomes)
    except ValueError as exc:
        _fail(str(exc))
        raise


def _webhook(url: str | None) -> str | None:
    if url is not None and not re.match(r"https?://[^/\s]+", url):
        _fail(f"--webhook: {url!r} is not an http:// or https:// URL")
    return url


@click.command()
@store_option
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(),
    help="The policy served: pinned model ids and routes' min_quality are checked against it.",
)
@click.option(
    "--since",
    default="24h",
    show_default=True,
    help="Start of the current window: 24h, 30m, 2d, a date, or unix seconds.",
)
@click.option(
    "--baseline",
    default="7d",
    show_default=True,
    help="Length of the baseline window, which ends where the current one starts.",
)
@click.option("--webhook", help="POST each new alert here as JSON (once per condition).")
@click.option(
    "--alpha",
    default=0.01,
    show_default=True,
    type=float,
    help="False discovery rate over the check's tests (Benjamini-Hochberg).",
)
@click.option("--min-requests", default=100, show_default=True, type=int)
@click.option("--min-outcomes", default=30, show_default=True, type=int)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def drift(
    store_url: str,
    policy_path: str | None,
    since: str,
    baseline: str,
    webhook: str | None,
    alpha: float,
    min_requests: int,
    min_outcomes: int,
    as_json: bool,
) -> None:
    """Compare the current window of the records with a baseline: model version changes,
    regressions per route, model and version (quality, latency, cost, errors, escalations),
    task-mix shift and, with --policy, routing drift. Each alert is announced (log line,
    --webhook) once per condition: the conditions raised are kept in the store."""
    from modelroute.analysis.drift import check
    from modelroute.analysis.drift.alerts import Announcer
    from modelroute.analysis.drift.report_text import render_report

    windows = _windows(since, baseline, time.time())
    thresholds = _thresholds(alpha, min_requests, min_outcomes)
    policy = _policy(policy_path)
    announcer = Announcer(webhook=_webhook(webhook))

    async def run(store: Store) -> tuple[Report, list[str]]:
        report = await check(store, windows, thresholds, policy)
        new = await announcer.announce(store, report)
        return report, [f.condition for f in new]

    report, announced = with_store(store_url, run)
    if as_json:
        data: dict[str, Any] = {**report.to_dict(), "announced": announced}
        click.echo(orjson.dumps(data, option=_JSON).decode())
    else:
        click.echo(render_report(report))
        if report.alerts:
            earlier = len(report.alerts) - len(announced)
            click.echo(
                f"announced now: {len(announced)} (log line{', webhook' if webhook else ''}); "
                f"announced before: {earlier}"
            )
    if report.alerts:
        raise SystemExit(EXIT_ALERT)


_JSON = orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY
