"""``modelroute outcomes``: measured quality per route (or task), model and version.

Also the store's part of ``modelroute explain --store``: the planner's statistics with quality
measured from the store's outcomes, as a gateway serving from that store would read them.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import click
import orjson

from modelroute.cli_records import parse_since, store_option, with_store
from modelroute.outcomes.outcome import OutcomeSource

if TYPE_CHECKING:
    from modelroute.outcomes.aggregate import Aggregate
    from modelroute.planner import StatsSnapshot
    from modelroute.policy import Policy
    from modelroute.records.stores.base import OutcomeScope


def _aggregates(
    store_url: str, by: OutcomeScope, source: str | None, since: float | None
) -> list[Aggregate]:
    from modelroute.outcomes.aggregate import load  # numpy and scipy: only when used

    chosen = None if source is None else OutcomeSource(source)
    return with_store(store_url, lambda s: load(s, by, source=chosen, since=since))


def measured_stats(store_url: str, stats: StatsSnapshot, policy: Policy) -> StatsSnapshot:
    """``stats`` with the quality of every (route, model) of ``policy`` that the store has
    outcomes for replaced by the current version's aggregate (``outcomes/measured.py``)."""
    from modelroute.outcomes.aggregate import current
    from modelroute.outcomes.measured import merge

    found = current(_aggregates(store_url, "route", None, None))
    return merge(stats, {k: a for k, a in found.items() if k[1] in policy.models})


def _interval(a: Aggregate) -> str:
    iv = a.interval
    if iv.low is None or iv.high is None:
        return "-"
    return f"[{iv.low:.3f}, {iv.high:.3f}]"


def _row(a: Aggregate) -> list[str]:
    return [
        a.key,
        a.model,
        a.version + (" *" if a.current else ""),
        str(a.n),
        "-" if a.mean is None else f"{a.mean:.3f}",
        _interval(a),
        a.source_label,
        datetime.fromtimestamp(a.last_at).strftime("%Y-%m-%d %H:%M"),
    ]


def _table(headers: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


@click.command()
@store_option
@click.option(
    "--by",
    type=click.Choice(["route", "task"]),
    default="route",
    show_default=True,
    help="Aggregate per route or per task (outcomes without one are left out).",
)
@click.option("--source", type=click.Choice([str(s) for s in OutcomeSource]))
@click.option("--since", help="15m, 2h, 7d, a date, or unix seconds")
@click.option("--json", "as_json", is_flag=True, help="The aggregates as JSON.")
def outcomes(
    store_url: str, by: OutcomeScope, source: str | None, since: str | None, as_json: bool
) -> None:
    """Measured quality per route (or task), model and provider-reported version: mean,
    sample size and 95% interval (Wilson for pass/fail scores, bootstrap for graded), and the
    sources it came from. * marks the version the planner reads (the newest)."""
    found = _aggregates(store_url, by, source, parse_since(since))
    if as_json:
        data: list[dict[str, Any]] = [a.to_dict() for a in found]
        click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())
        return
    if not found:
        click.echo("no outcomes in the store (or none match --source/--since)", err=True)
        return
    headers = [by, "model", "version", "n", "mean", "95% interval", "sources", "latest"]
    click.echo(_table(headers, [_row(a) for a in found]))
