"""``modelroute replay``: plan recorded requests again under a policy."""

from __future__ import annotations

from collections import Counter
from typing import Any

import click
import orjson

from modelroute.cli_records import EXIT_BAD_INPUT, parse_since, store_option, with_store
from modelroute.errors import PolicyError
from modelroute.policy import Policy, load_policy
from modelroute.records.stores import Store

EXIT_NOT_REPRODUCED = 1


def load_policy_or_exit(path: str) -> Policy:
    """The policy at ``path``, or its problems printed and exit 2."""
    try:
        return load_policy(path)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(problem.render(), err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None


async def _inventory(store: Store, since: float | None, route: str | None) -> dict[str, Any]:
    """Records per policy hash (and version), and how many carry a planner input."""
    policies: Counter[tuple[str, str]] = Counter()
    replayable: Counter[tuple[str, str]] = Counter()
    async for page in store.scan(since=since, route=route):
        for r in page:
            key = (r.get("policy_hash") or "", r.get("policy_version") or "")
            policies[key] += 1
            replayable[key] += r.get("planner_input") is not None
    return {
        "policies": [
            {"hash": h, "version": v or None, "records": n, "replayable": replayable[(h, v)]}
            for (h, v), n in policies.most_common()
        ]
    }


@click.command()
@store_option
@click.option(
    "--policy",
    "policy_path",
    type=click.Path(),
    help="The policy to plan with: the one the records were recorded under (checked by its "
    "hash: every decision must come out the same) or a new one (what would change).",
)
@click.option("--since", help="15m, 2h, 7d, a date, or unix seconds")
@click.option("--route", help="Only records planned on this route.")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def replay(
    store_url: str, policy_path: str | None, since: str | None, route: str | None, as_json: bool
) -> None:
    """Plan recorded requests again from what each record kept of the planner's input.

    Under the policy the records were recorded with, every decision must be reproduced (exit
    1 if one is not). Under another policy: how many decisions change, per route, and the
    projected cost from the recorded usage. Without --policy: the policies in the store.
    """
    from modelroute.analysis import Replay, render_replay

    since_ts = parse_since(since)
    if policy_path is None:
        found = with_store(store_url, lambda s: _inventory(s, since_ts, route))
        if as_json:
            click.echo(orjson.dumps(found, option=orjson.OPT_INDENT_2).decode())
            return
        click.echo("records by policy (pass the policy file with --policy to replay them):")
        for p in found["policies"]:
            version = f" version {p['version']}" if p["version"] else ""
            click.echo(
                f"  {p['hash'][:12] or '(none)'}{version}: {p['records']} records, "
                f"{p['replayable']} with planner input"
            )
        return
    policy = load_policy_or_exit(policy_path)
    replayer = Replay(policy, policy_path)

    async def run(store: Store) -> None:
        async for page in store.scan(since=since_ts, route=route):
            for record in page:
                replayer.add(record)

    with_store(store_url, run)
    report = replayer.report()
    if not report["total"]["records"]:
        click.echo(
            "error: no records to replay in the store (or none match --since/--route)", err=True
        )
        raise SystemExit(EXIT_BAD_INPUT)
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render_replay(report))
    if report["not_reproduced"]["count"]:
        raise SystemExit(EXIT_NOT_REPRODUCED)
