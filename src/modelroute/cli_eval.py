"""``modelroute eval``: measure models on a labelled dataset, import recorded outcomes, or
compare two provider-reported versions of a model."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click
import orjson

from modelroute.cli_records import EXIT_BAD_INPUT, store_option
from modelroute.errors import PolicyError
from modelroute.evaluation import (
    CostEstimate,
    Dataset,
    DatasetError,
    Evaluation,
    OutcomeImport,
    Progress,
    RunSummary,
    Tally,
    compare_versions,
    evaluation_policy,
    is_neutral,
    load_jsonl,
    load_neutral,
    render_comparison,
    render_report,
    route_models,
)
from modelroute.grading import Graders, Judge, JudgePrompt, JudgePromptError
from modelroute.outcomes import Outcome, OutcomeSource
from modelroute.policy import Policy, load_policy
from modelroute.policy.compiled import Route
from modelroute.pricing import usd
from modelroute.records.stores import Store, open_store

if TYPE_CHECKING:
    from modelroute.router import Router

T = TypeVar("T")
EXIT_INCOMPLETE = 1  # stopped at --max-cost: run the same command again to go on
_BY_TASK_ROWS = 60  # the per-task table is shown by default up to this many rows


@dataclass(frozen=True, slots=True)
class _EvalOptions:
    models: list[str]
    concurrency: int
    max_cost: float | None
    limit: int | None
    run: str
    fallbacks: bool
    grader: Any
    judge_model: str | None
    judge_prompt: str | None


class Refused(Exception):
    """Bad input found after the run began: one message, exit code 2."""


def _fail(message: str) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


class StderrProgress:
    """One line on stderr, rewritten at most a few times a second: pairs done, spend."""

    def __init__(self, every_s: float = 0.5) -> None:
        self.every_s = every_s
        self._last = 0.0
        self._latest: Progress | None = None
        self._shown: Progress | None = None

    def __call__(self, p: Progress) -> None:
        self._latest = p
        now = time.monotonic()
        if p.done < p.total and now - self._last < self.every_s:
            return
        self._last = now
        self._show(p)

    def _show(self, p: Progress) -> None:
        self._shown = p
        width = 30
        filled = width * p.done // max(p.total, 1)
        bar = "#" * filled + "-" * (width - filled)
        line = f"\r[{bar}] {p.done}/{p.total} requests, {usd(p.spent_usd)} spent"
        click.echo(line, err=True, nl=False)

    def close(self) -> None:
        """The last state (a run stopped early never reaches its total), then a newline."""
        if self._latest is not None and self._latest is not self._shown:
            self._show(self._latest)
        if self._shown is not None:
            click.echo("", err=True)


@contextlib.asynccontextmanager
async def _opened(url: str) -> AsyncIterator[Store]:
    try:
        store = open_store(url)
        await store.open()
    except Exception as exc:  # unreachable database, bad URL: a message, not a traceback
        raise Refused(f"cannot open the store {url}: {exc}") from None
    try:
        yield store
    finally:
        await store.close()


def _run(action: Callable[[], Coroutine[Any, Any, T]]) -> T:
    try:
        return asyncio.run(action())
    except (Refused, DatasetError, JudgePromptError) as exc:
        _fail(str(exc))


def _grader_option(text: str | None) -> Any:
    """``--grader``: a name (``exact``) or a JSON spec (``{"numeric": {"tolerance": 0.5}}``)."""
    if text is None:
        return None
    if text.lstrip()[:1] in ("{", '"'):
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError as exc:
            _fail(f"--grader is not valid JSON: {exc}")
    return text


def _policy(path: str | None) -> Policy:
    if path is None:
        _fail("--policy is required to send a dataset through the engine")
    try:
        return load_policy(path)
    except PolicyError as exc:
        for problem in exc.problems:
            click.echo(problem.render(), err=True)
        raise SystemExit(EXIT_BAD_INPUT) from None


def _route(policy: Policy, name: str | None) -> Route:
    route = policy.names.get(name) if name else None
    if route is None:
        what = "--route is required" if not name else f"no route or alias named {name!r}"
        _fail(f"{what}; routes: {', '.join(sorted(policy.routes))}")
    return route


def _models(policy: Policy, route: Route, names: str | None) -> list[str]:
    if not names:
        return route_models(route)
    chosen = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [n for n in chosen if n not in policy.models]
    if unknown or not chosen:
        _fail(f"unknown model(s) {', '.join(unknown)}; models: {', '.join(policy.models)}")
    return list(dict.fromkeys(chosen))


def _print_json(data: Any) -> None:
    click.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode())


@contextlib.contextmanager
def _simulator(policy: Policy, path: str) -> Iterator[None]:
    """The simulator a policy declares, as ``serve`` starts it (examples run offline)."""
    from modelroute.serve import SimulatorError, policy_simulator

    with contextlib.ExitStack() as stack:
        try:
            stack.enter_context(policy_simulator(policy, path))
        except SimulatorError as exc:
            _fail(str(exc))
        yield


@click.command("eval")
@click.argument("dataset", required=False, type=click.Path())
@click.option("--policy", "policy_path", type=click.Path(), help="The policy with the models.")
@click.option("--route", help="The route whose models (and retries, timeouts) are evaluated.")
@click.option("--models", help="Comma-separated models to evaluate (default: the route's).")
@click.option("--concurrency", default=4, show_default=True, type=click.IntRange(1, 256))
@click.option(
    "--max-cost",
    type=click.FloatRange(min=0),
    help="Refuse a run estimated above this many USD; stop sending once spend reaches it.",
)
@click.option("--limit", type=click.IntRange(min=1), help="Only the first N prompts.")
@store_option
@click.option("--run", "run_name", help="The run's name (default: DATASET@ROUTE); resumes it.")
@click.option("--fallbacks", is_flag=True, help="Let the route's fallbacks answer for a model.")
@click.option(
    "--grader",
    "grader_text",
    help="Grader for prompts that name none (or all, for a directory dataset).",
)
@click.option("--judge", "judge_model", help="The model judge graders use when they name none.")
@click.option("--judge-prompt", type=click.Path(), help="Replace the judge's prompt file.")
@click.option(
    "--import",
    "import_only",
    is_flag=True,
    help="Import a directory dataset's recorded outcomes instead of sending its prompts.",
)
@click.option(
    "--compare",
    nargs=2,
    metavar="OLD NEW",
    help="Compare two provider-reported versions, per task, from the stored outcomes.",
)
@click.option("--model", "compare_model", help="With --compare: only this model's outcomes.")
@click.option("--by-task/--no-by-task", default=None, help="Show the per-task table.")
@click.option("--json", "as_json", is_flag=True, help="The report as JSON.")
def eval_command(
    dataset: str | None,
    policy_path: str | None,
    route: str | None,
    models: str | None,
    concurrency: int,
    max_cost: float | None,
    limit: int | None,
    store_url: str,
    run_name: str | None,
    fallbacks: bool,
    grader_text: str | None,
    judge_model: str | None,
    judge_prompt: str | None,
    import_only: bool,
    compare: tuple[str, str] | None,
    compare_model: str | None,
    by_task: bool | None,
    as_json: bool,
) -> None:
    """Send DATASET's prompts to each model of a route, grade the answers and keep the scores
    as outcomes; print quality per model (and task) with intervals, cost and latency.

    DATASET is a JSONL file (messages, reference, grader, optional task and id) or a
    directory in the neutral per-prompt format (prompts.jsonl.gz, outcomes.csv.gz,
    models.csv), whose recorded outcomes --import stores as they are. A run is resumable:
    pairs of prompt and model already scored in it are skipped.
    """
    if compare:
        _compare(store_url, compare, route, compare_model, as_json)
        return
    if dataset is None:
        _fail("give a DATASET (a JSONL file or a dataset directory), or --compare OLD NEW")
    path = Path(dataset)
    if not path.exists():
        _fail(f"dataset not found: {dataset}")
    if import_only:
        _import(path, store_url, run_name, route, limit, by_task, as_json)
        return
    loaded = _policy(policy_path)
    assert policy_path is not None
    chosen = _route(loaded, route)
    options = _EvalOptions(
        models=_models(loaded, chosen, models),
        concurrency=concurrency,
        max_cost=max_cost,
        limit=limit,
        run=run_name or f"{path.stem}@{chosen.name}",
        fallbacks=fallbacks,
        grader=_grader_option(grader_text),
        judge_model=judge_model,
        judge_prompt=judge_prompt,
    )
    with _simulator(loaded, policy_path):
        code = _run(lambda: _evaluate(path, loaded, chosen, store_url, options, by_task, as_json))
    if code:
        raise SystemExit(code)


def _dataset(path: Path, graders: Graders, options: _EvalOptions) -> Dataset:
    if is_neutral(path):
        return load_neutral(path, graders.get, options.grader, options.limit)
    if path.is_dir():
        raise DatasetError(f"{path} is a directory without prompts.jsonl.gz")
    return load_jsonl(path, graders.get, options.grader, options.limit)


def _graders(router: Router, options: _EvalOptions) -> Graders:
    prompt = (
        JudgePrompt.from_file(options.judge_prompt)
        if options.judge_prompt is not None
        else JudgePrompt.default()
    )

    def judge(model: str | None, rubric: str | None) -> Judge:
        chosen = model or options.judge_model
        if chosen is None:
            raise ValueError("a judge grader names no model; name one or pass --judge MODEL")
        return Judge(router, chosen, prompt, rubric)

    return Graders(judges=judge)


def _say_estimate(evaluation: Evaluation, pending: int, cost: CostEstimate) -> None:
    s = evaluation.summary
    resumed = (
        f"; {s.resumed} already scored in run {evaluation.run_name!r}, skipped" if s.resumed else ""
    )
    click.echo(
        f"estimated cost: {usd(cost.usd)} for {cost.requests} requests "
        f"({len(evaluation.models)} models x {len(evaluation.dataset.items)} prompts{resumed})",
        err=True,
    )
    for model, spend in sorted(cost.per_model.items()):
        click.echo(f"  {model}: {usd(spend)}", err=True)
    if cost.infeasible:
        click.echo(f"  {cost.infeasible} requests the planner would refuse (not counted)", err=True)
    if evaluation.graders_call_models:
        click.echo("  judge and verifier calls are not in the estimate", err=True)
    for reason, count in evaluation.dataset.skipped.items():
        click.echo(f"skipped {count} prompts: {reason}", err=True)


async def _evaluate(
    path: Path,
    policy: Policy,
    route: Route,
    store_url: str,
    options: _EvalOptions,
    by_task: bool | None,
    as_json: bool,
) -> int:
    from modelroute.router import Router

    router = Router(evaluation_policy(policy, route, options.fallbacks))
    try:
        graders = _graders(router, options)
        dataset = _dataset(path, graders, options)
        async with _opened(store_url) as store:
            evaluation = Evaluation(
                router, route, options.models, dataset, graders, store, options.run,
                concurrency=options.concurrency, max_cost_usd=options.max_cost,
            )  # fmt: skip
            pending = await evaluation.pending()
            cost = evaluation.estimate(pending)
            _say_estimate(evaluation, len(pending), cost)
            if options.max_cost is not None and cost.usd > options.max_cost:
                raise Refused(
                    f"the estimated cost {usd(cost.usd)} is above --max-cost "
                    f"{usd(options.max_cost)}; nothing was sent (lower --limit or --models)"
                )
            progress = StderrProgress()
            try:
                summary = await evaluation.run(pending, progress)
            finally:
                progress.close()
            stored = await store.outcomes(
                source=OutcomeSource.EVAL, run=options.run, route=route.name
            )
    finally:
        await router.aclose()
    tally = evaluation.tally
    tally.add_all(stored)
    report = {
        "run": options.run,
        "route": route.name,
        **tally.to_dict(),
        "summary": asdict(summary),
        "skipped": dataset.skipped,
    }
    if as_json:
        _print_json(report)
    else:
        _say_summary(summary)
        show = by_task if by_task is not None else _few_tasks(tally)
        click.echo(render_report(report, show))
    return EXIT_INCOMPLETE if summary.stopped_at_max_cost else 0


def _few_tasks(tally: Tally) -> bool:
    return len(tally.tasks()) > 1 and len(tally.by_task) <= _BY_TASK_ROWS


def _say_summary(summary: RunSummary) -> None:
    click.echo(
        f"{summary.scored} scored, {summary.failed} failed, {summary.ungraded} not graded, "
        f"{summary.resumed} resumed; spent {usd(summary.spent_usd)}",
        err=True,
    )
    for kind, messages in summary.examples.items():
        for message in messages:
            click.echo(f"  {kind}: {message}", err=True)
    if summary.stopped_at_max_cost:
        click.echo("stopped: spend reached --max-cost; run the same command to go on", err=True)


def _import(
    path: Path,
    store_url: str,
    run_name: str | None,
    route: str | None,
    limit: int | None,
    by_task: bool | None,
    as_json: bool,
) -> None:
    if not is_neutral(path):
        _fail(
            f"--import needs a dataset directory with prompts.jsonl.gz and outcomes.csv.gz: {path}"
        )
    run = run_name or f"import:{path.resolve().name}"

    async def action() -> tuple[Tally, int, int, float]:
        started = time.perf_counter()
        source = OutcomeImport(path, run, route, limit)
        tally, added = Tally(), 0
        async with _opened(store_url) as store:
            for batch in source.batches():
                added += await store.add_outcomes(batch)
                tally.add_all(batch)
                click.echo(f"\rimported {source.rows} rows", err=True, nl=False)
        click.echo("", err=True)
        return tally, source.rows, added, time.perf_counter() - started

    tally, rows, added, seconds = _run(action)
    report = {"run": run, "rows": rows, "new": added, "seconds": seconds, **tally.to_dict()}
    if as_json:
        _print_json(report)
        return
    rate = rows / seconds if seconds > 0 else 0.0
    click.echo(
        f"imported {rows} outcomes ({added} new) from {path} as run {run!r} "
        f"in {seconds:.1f}s ({rate:,.0f} rows/s)",
        err=True,
    )
    click.echo(render_report(report, by_task if by_task is not None else _few_tasks(tally)))


def _compare(
    store_url: str, versions: tuple[str, str], route: str | None, model: str | None, as_json: bool
) -> None:
    async def action() -> list[Outcome]:
        async with _opened(store_url) as store:
            return await store.outcomes(route=route, model=model)

    if "://" not in store_url and not Path(store_url).exists():
        _fail(f"no outcomes at {store_url} (pass --store)")
    old, new = versions
    report = compare_versions(_run(action), old, new)
    if as_json:
        _print_json(report)
    else:
        click.echo(render_comparison(report))
