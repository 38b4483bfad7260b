"""``modelroute compare``: a canary's two arms side by side, from the record store."""

from __future__ import annotations

import time
from typing import Any

import click
import orjson

from modelroute.cli_records import parse_since, store_option, with_store


@click.command()
@click.option("--since", default="1d", show_default=True, help="15m, 2h, 7d, a date, or unix s.")
@click.option("--json", "as_json", is_flag=True, help="Print the summaries as JSON.")
@store_option
def compare(since: str, as_json: bool, store_url: str) -> None:
    """The canary arm against the baseline (records served while a canary ran): volume,
    cost, latency, error rate and measured quality, each with its 95% interval."""
    from modelroute.analysis.compare import quality_difference, render, summarise

    start = parse_since(since, time.time())

    async def read(store: Any) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        async for page in store.scan(since=start):
            rows += [r for r in page if r.get("arm")]
        return rows

    arms = summarise(with_store(store_url, read))
    if as_json:
        diff = quality_difference(arms)
        out = {
            "since": start,
            "arms": {name: arm.to_dict() for name, arm in arms.items()},
            "quality_difference": None
            if diff is None
            else {"mean": diff.mean, "low": diff.low, "high": diff.high, "n": diff.n},
        }
        click.echo(orjson.dumps(out, option=orjson.OPT_INDENT_2).decode())
        return
    if not any(arm.requests for arm in arms.values()):
        click.echo(f"no canary traffic since {since} (serve with --canary NEW.yaml)", err=True)
        return
    click.echo(render(arms, since))
