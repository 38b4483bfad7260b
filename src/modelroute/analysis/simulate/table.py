"""Per-prompt outcomes as arrays: what a simulation looks answers up in.

A table holds, for each prompt (rows) and model (columns), the recorded score and cost, and
per prompt its text, task, recorded input tokens and split. It is read from a directory in the
neutral format (read by ``outcomes/neutral.py``: ``prompts.jsonl.gz``, ``outcomes.csv.gz``,
``models.csv``), or built from the project's own outcomes (eval, shadow, feedback, import).
A cell no outcome covers is NaN; ``complete`` keeps the prompts every named model answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from modelroute.outcomes import Outcome
from modelroute.outcomes.neutral import OutcomeDataError, read_outcomes

__all__ = ["Bools", "Floats", "OutcomeDataError", "OutcomeTable", "from_outcomes", "read_neutral"]

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class OutcomeTable:
    name: str
    ids: tuple[str, ...]  # prompt ids, one per row
    texts: tuple[str, ...]
    tasks: tuple[str, ...]  # the benchmark's category, else the dataset name
    splits: tuple[str | None, ...]  # the data's own split column, when it has one
    input_tokens: npt.NDArray[np.int64]
    models: tuple[str, ...]  # columns
    scores: Floats  # (prompts, models), NaN where no outcome
    costs: Floats  # (prompts, models), NaN where no outcome or no cost
    # signal -> (prompts, models): the confidence logged with each answer, NaN where none
    confidences: Mapping[str, Floats] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ids)

    def column(self, model: str) -> int:
        return self.models.index(model)

    def rows(self, keep: Bools | Sequence[int]) -> OutcomeTable:
        index = np.flatnonzero(keep) if isinstance(keep, np.ndarray) else np.asarray(keep)
        return replace(
            self,
            ids=tuple(self.ids[i] for i in index),
            texts=tuple(self.texts[i] for i in index),
            tasks=tuple(self.tasks[i] for i in index),
            splits=tuple(self.splits[i] for i in index),
            input_tokens=self.input_tokens[index],
            scores=self.scores[index],
            costs=self.costs[index],
            confidences={k: v[index] for k, v in self.confidences.items()},
        )

    def columns(self, models: Sequence[str]) -> OutcomeTable:
        index = [self.column(m) for m in models]
        return replace(
            self,
            models=tuple(models),
            scores=self.scores[:, index],
            costs=self.costs[:, index],
            confidences={k: v[:, index] for k, v in self.confidences.items()},
        )

    def complete(self, models: Sequence[str] | None = None) -> OutcomeTable:
        """The prompts every model in ``models`` (default: all) has a score and a cost for."""
        index = [self.column(m) for m in (models or self.models)]
        known = ~np.isnan(self.scores[:, index]) & ~np.isnan(self.costs[:, index])
        return self.rows(np.asarray(known.all(axis=1), dtype=bool))


def read_neutral(directory: Path) -> OutcomeTable:
    """A directory in the neutral format (``outcomes.neutral``), every prompt and model in
    it."""
    found = read_outcomes(directory)
    prompts = found.prompts
    return OutcomeTable(
        directory.resolve().name,
        tuple(p.id for p in prompts),
        tuple(p.text for p in prompts),
        tuple(p.task for p in prompts),
        tuple(p.split for p in prompts),
        found.input_tokens,
        found.models,
        found.scores,
        found.costs,
    )


def from_outcomes(outcomes: Iterable[Outcome], name: str = "outcomes") -> OutcomeTable:
    """The project's own outcomes as a table: one row per prompt (its id, else its hash),
    the newest outcome per prompt and model. Texts are unknown (empty) unless an outcome's
    ``detail`` keeps a ``prompt``; input tokens come from ``detail.input_tokens`` when kept."""
    newest: dict[str, dict[str, Outcome]] = {}
    for outcome in sorted(outcomes, key=lambda o: o.created_at):
        key = outcome.prompt_id or outcome.prompt_hash
        if key is not None:
            newest.setdefault(key, {})[outcome.model] = outcome
    if not newest:
        raise OutcomeDataError(f"{name}: no outcomes with a prompt id or hash")
    models = sorted({m for row in newest.values() for m in row})
    keys = sorted(newest)
    scores = np.full((len(keys), len(models)), np.nan)
    costs = np.full((len(keys), len(models)), np.nan)
    texts, tasks, tokens = [], [], []
    confidences: dict[str, Floats] = {}
    for i, key in enumerate(keys):
        row = newest[key]
        for model, outcome in row.items():
            j = models.index(model)
            scores[i, j] = outcome.score
            costs[i, j] = np.nan if outcome.cost_usd is None else outcome.cost_usd
            for signal, value in outcome.confidences.items():
                grid = confidences.setdefault(signal, np.full(scores.shape, np.nan))
                grid[i, j] = float(value)
        first = next(iter(row.values()))
        texts.append(str(first.detail.get("prompt", "")))
        tasks.append(first.task or first.route or name)
        tokens.append(int(first.detail.get("input_tokens", 0) or 0))
    return OutcomeTable(
        name,
        tuple(keys),
        tuple(texts),
        tuple(tasks),
        (None,) * len(keys),
        np.asarray(tokens, dtype=np.int64),
        tuple(models),
        scores,
        costs,
        confidences,
    )
