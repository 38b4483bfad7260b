"""``modelroute simulate``: a policy replayed on recorded per-prompt outcomes, offline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click
import orjson

from modelroute.cli_analysis import load_policy_or_exit
from modelroute.cli_records import EXIT_BAD_INPUT, with_store
from modelroute.records.stores import Store

if TYPE_CHECKING:  # numpy is imported only when the command runs
    from modelroute.analysis.simulate.table import OutcomeTable


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


def _table(source: str) -> OutcomeTable:
    from modelroute.analysis.simulate import OutcomeDataError, from_outcomes, read_neutral

    if "://" in source:

        async def read(store: Store) -> OutcomeTable:
            return from_outcomes(await store.outcomes(), source)

        try:
            return with_store(source, read)
        except OutcomeDataError as exc:
            _fail(str(exc))
    path = Path(source)
    if not path.is_dir():
        _fail(f"--outcomes {source}: not a directory (or a store URL: sqlite:///… postgresql://…)")
    try:
        return read_neutral(path)
    except OutcomeDataError as exc:
        _fail(str(exc))
    raise AssertionError("unreachable")


def _pair(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    names = [n.strip() for n in text.split(",")]
    if len(names) != 2 or not all(names) or names[0] == names[1]:
        _fail(f"--pair {text!r}: expected STRONG,WEAK (two different model names)")
    return names[0], names[1]


@click.command()
@click.option("--policy", "policy_path", required=True, type=click.Path(), help="The policy.")
@click.option(
    "--outcomes",
    "source",
    required=True,
    help="A directory of per-prompt outcomes in the neutral format (prompts.jsonl.gz, "
    "outcomes.csv.gz, models.csv), or a record store URL for the project's own outcomes.",
)
@click.option(
    "--route",
    help="The route each prompt is sent to (default: the policy's only "
    "route; else each prompt's task, match rules or the default route).",
)
@click.option(
    "--split",
    default="all",
    show_default=True,
    help="train, validation, test or all: the data's own split column when it has one "
    "(its train part split 75/25, seeded, for validation), else a seeded 60/20/20 per prompt: "
    "the split `modelroute train` uses.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of splits and draws.")
@click.option(
    "--verifier-error",
    type=click.FloatRange(0, 1),
    help="Replay a cascade with a verifier that errs with this probability where no "
    "confidence was recorded.",
)
@click.option("--pair", help="STRONG,WEAK: APGR and CPT for this pair of models.")
@click.option("--no-sweep", is_flag=True, help="Only the policy as written, no curve.")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
@click.option("--plot", type=click.Path(dir_okay=False), help="Write the curves as HTML here.")
def simulate(
    policy_path: str,
    source: str,
    route: str | None,
    split: str,
    seed: int,
    verifier_error: float | None,
    pair: str | None,
    no_sweep: bool,
    as_json: bool,
    plot: str | None,
) -> None:
    """Send each recorded prompt through the policy's planner and look up what the chosen
    model scored and cost; compare with every single model, random routing at equal cost,
    the zero router and the oracle (AIQ, APGR/CPT, cost at 95%/98% of the best model)."""
    from modelroute.analysis.simulate import SimulationError
    from modelroute.analysis.simulate.report import report_dict
    from modelroute.analysis.simulate.session import Request, run
    from modelroute.analysis.simulate.text import plot_html, render

    if split not in ("train", "validation", "test", "all"):
        _fail(f"--split {split!r}: expected train, validation, test or all")
    if plot is not None and not plot.endswith((".html", ".htm")):
        _fail(f"--plot {plot}: the plot is written as HTML; name a .html file")
    policy = load_policy_or_exit(policy_path)
    if route is None and len(policy.routes) == 1:
        route = next(iter(policy.routes))
    table = _table(source)
    request = Request(policy, table, route, split, seed, verifier_error, _pair(pair), not no_sweep)
    try:
        report = run(request)
    except SimulationError as exc:
        _fail(str(exc))
        return
    if plot is not None:
        try:
            Path(plot).write_text(plot_html(report), encoding="utf-8")
        except OSError as exc:
            _fail(f"cannot write {plot}: {exc}")
    if as_json:
        click.echo(orjson.dumps(report_dict(report), option=orjson.OPT_INDENT_2).decode())
    else:
        click.echo(render(report))
