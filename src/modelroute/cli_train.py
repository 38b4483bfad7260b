"""``modelroute train``: fit a learned router on per-prompt outcomes and write its file.

Exit codes: 0 written and the target met on the validation prompts, 1 written but the target
was not met there, 2 bad input.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

if TYPE_CHECKING:
    from modelroute.learned.train import Trained

EXIT_BAD_INPUT = 2
EXIT_TARGET_MISSED = 1


def _bad(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_BAD_INPUT)


def _table(trained: Trained) -> str:
    head = ("kind", "val MSE", "threshold", "quality [95% CI]", "n", "cost/prompt", "target")
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
                f"{c.threshold:.3f}",
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
    required=True,
    type=click.Path(),
    help="A directory of per-prompt outcomes in the neutral format.",
)
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
    "--target",
    default=0.95,
    show_default=True,
    type=click.FloatRange(0.01, 1.0),
    help="Quality target, as a share of the best single model's quality.",
)
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the split.")
def train_command(
    outcomes_dir: str, models: str | None, out: str, kind: str, target: float, seed: int
) -> None:
    """Fit a learned router on OUTCOMES and write it to OUT for a 'learned' route.

    Prompts are split by prompt (the data's own split column when present): fitted on the
    train part, the threshold calibrated to TARGET on the validation part; the test part is
    left for `modelroute simulate`.
    """  # fmt: skip
    from modelroute.learned.data import OutcomeDataError, load_outcomes
    from modelroute.learned.scorers import KINDS
    from modelroute.learned.train import train, write

    names = [m.strip() for m in models.split(",") if m.strip()] if models else None
    try:
        data = load_outcomes(outcomes_dir, names)
        kinds = KINDS if kind == "auto" else (kind,)
        trained = train(data, kinds, target, seed, outcomes_dir)
    except (OutcomeDataError, ValueError) as exc:
        _bad(str(exc))
        return
    try:
        digest = write(trained, out)
    except OSError as exc:
        _bad(f"cannot write {out}: {exc}")
        return
    click.echo(_table(trained))
    click.echo(
        f"wrote {out} (kind {trained.chosen.fitted.kind}, threshold "
        f"{trained.chosen.calibration.threshold:.3f}, sha256 {digest[:12]}; "
        f"{trained.train_prompts} train / {trained.validation_prompts} validation prompts)"
    )
    if not trained.chosen.calibration.met:
        raise SystemExit(EXIT_TARGET_MISSED)
