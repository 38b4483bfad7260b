"""``modelroute calibrate``: fit a cascade's confidence threshold to a quality target from
the store's outcomes, report it on held-out prompts, and write it into a copy of the policy.

Exit codes: 0 calibrated (the target holds on the held-out prompts), 1 the data cannot meet
the target or is not enough to tell, 2 bad input.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from modelroute.cli_records import EXIT_BAD_INPUT, store_option, with_store
from modelroute.errors import PolicyError
from modelroute.outcomes import Outcome
from modelroute.policy import Policy, load_policy
from modelroute.policy.compiled import Route
from modelroute.records.stores import Store

if TYPE_CHECKING:
    from modelroute.analysis.policy_edit import Change

EXIT_CANNOT_MEET = 1


def _bad(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


def _policy(path: str) -> tuple[Policy, str]:
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(problem.render(), err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None
    return policy, Path(path).read_text(encoding="utf-8")


def _cascade(policy: Policy, name: str) -> Route:
    route = policy.routes.get(name)
    if route is None:
        _bad(f"no route {name!r} in the policy (routes: {', '.join(policy.routes)})")
    assert route is not None
    if route.strategy != "cascade" or route.confidence is None:
        _bad(
            f"route {name!r} is not a cascade (strategy {route.strategy}): calibrate fits a "
            "cascade's confidence threshold"
        )
    return route


def _edit(
    text: str, policy_path: str, route: str, signal: str, threshold: float, dest: str | None
) -> tuple[str, list[Change]]:
    from modelroute.analysis.policy_edit import PolicyEditError, set_confidence

    try:
        return set_confidence(text, dest or policy_path, route, signal, threshold)
    except PolicyEditError as exc:
        _bad(f"cannot write the new threshold into {policy_path}: {exc}")
        raise


def _say_change(
    text: str, edited: str, changes: list[Change], policy_path: str, dest: str | None
) -> None:
    from modelroute.analysis.policy_edit import unified_diff

    if dest is not None:
        for change in changes:
            click.echo(
                f"wrote {dest}: {change.path} {change.old} -> {change.new} (line {change.line})"
            )
        if not changes:
            click.echo(f"wrote {dest}: a copy, unchanged (the policy already has these values)")
    elif changes:
        click.echo("the change (write it with --write NEW.yaml):")
        click.echo(unified_diff(text, edited, policy_path, policy_path), nl=False)
    else:
        click.echo(f"{policy_path} already has these values")


@click.command()
@click.option("--policy", "policy_path", required=True, type=click.Path(), help="Policy file.")
@click.option("--route", required=True, help="The cascade route to calibrate.")
@click.option(
    "--target", required=True, help='"accuracy>=0.9" or "quality_ratio>=0.95" (of the last tier)'
)
@click.option(
    "--split",
    "held_out",
    default=0.5,
    show_default=True,
    type=float,
    help="Share of the prompts held out to test the fitted threshold.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the split.")
@click.option(
    "--signal",
    type=click.Choice(["logprobs", "label_probability", "validator", "verifier"]),
    help="Fit only this confidence signal (default: every one logged).",
)
@store_option
@click.option(
    "--write", "write_path", type=click.Path(dir_okay=False), help="Write the new policy here."
)
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def calibrate(
    policy_path: str,
    route: str,
    target: str,
    held_out: float,
    seed: int,
    signal: str | None,
    store_url: str,
    write_path: str | None,
    as_json: bool,
) -> None:
    """Fit a cascade's confidence threshold (and signal) to a quality target from outcomes.

    Per prompt scored by every tier, the first tier's logged confidences decide whether its
    answer would have been accepted. The threshold is fitted on part of the prompts and
    reported on the rest (--split); the new threshold is printed as a change to the policy,
    or written into a copy (--write). Exit 1 when the data cannot meet the target.
    """
    from modelroute.analysis.calibration import Request, calibrate, parse_target
    from modelroute.analysis.calibration_text import calibration_dict, render_calibration

    try:
        goal = parse_target(target)
    except ValueError as exc:
        _bad(str(exc))
        return
    if not 0 < held_out < 1:
        _bad(f"--split {held_out:g}: the share held out must be between 0 and 1")
    policy, text = _policy(policy_path)
    cascade = _cascade(policy, route)
    if write_path is not None and Path(write_path).resolve() == Path(policy_path).resolve():
        _bad("--write names the policy itself: give a new file, the policy stays as it is")

    async def read(store: Store) -> list[Outcome]:
        return await store.outcomes(route=route)

    outcomes = with_store(store_url, read)
    result = calibrate(Request(policy, cascade, outcomes, goal, held_out, seed, signal))
    report = calibration_dict(result)
    edited = text
    changes: list[Change] = []
    if result.verdict == "calibrated" and result.chosen is not None and result.held_out:
        new = (result.chosen.signal, result.held_out.threshold)
        edited, changes = _edit(text, policy_path, route, *new, write_path)
        if write_path is not None:
            try:
                Path(write_path).write_text(edited, encoding="utf-8")
            except OSError as exc:
                _bad(f"cannot write {write_path}: {exc}")
        report["written"] = write_path
        report["changes"] = [asdict(change) for change in changes]
    if as_json:
        click.echo(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render_calibration(result))
        if result.verdict == "calibrated":
            _say_change(text, edited, changes, policy_path, write_path)
    if result.verdict != "calibrated":
        raise SystemExit(EXIT_CANNOT_MEET)
