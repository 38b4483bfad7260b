"""Per-prompt outcomes as arrays: what a simulation looks answers up in.

A table holds, for each prompt (rows) and model (columns), the recorded score and cost, and
per prompt its text, task, recorded input tokens and split. It is read from a directory in the
neutral format (``evaluation/neutral.py``: ``prompts.jsonl.gz``, ``outcomes.csv.gz``,
``models.csv``), or built from the project's own outcomes (eval, shadow, feedback, import).
A cell no outcome covers is NaN; ``complete`` keeps the prompts every named model answered.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson

from modelroute.outcomes import Outcome

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]


# The neutral format's files and outcome columns (as ``evaluation/neutral.py`` names them;
# not imported from there, which would bring in the graders and the request path).
PROMPTS = "prompts.jsonl.gz"
OUTCOMES = "outcomes.csv.gz"
OUTCOME_COLUMNS = ("prompt_id", "model", "score", "input_tokens", "output_tokens", "cost_usd")


class OutcomeDataError(ValueError):
    """Outcome data that cannot be read; the message names the file and line."""


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
    """A directory in the neutral format, every prompt and model in it."""
    prompts = _read_prompts(directory / PROMPTS)
    row_of = {pid: i for i, pid in enumerate(prompts)}
    models: dict[str, int] = {}
    cells: list[tuple[int, int, float, float]] = []
    tokens = np.zeros(len(prompts), dtype=np.int64)
    path = directory / OUTCOMES
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = tuple(next(reader, ()))
            if header[: len(OUTCOME_COLUMNS)] != OUTCOME_COLUMNS:
                raise OutcomeDataError(f"{path}:1: expected columns {','.join(OUTCOME_COLUMNS)}")
            for number, row in enumerate(reader, start=2):
                cells.append(_cell(row, f"{path}:{number}", row_of, models, tokens))
    except (OSError, EOFError, csv.Error) as exc:
        raise OutcomeDataError(f"cannot read {path}: {exc}") from None
    if not cells:
        raise OutcomeDataError(f"{path}: no outcome rows")
    scores = np.full((len(prompts), len(models)), np.nan)
    costs = np.full((len(prompts), len(models)), np.nan)
    at = np.array(cells, dtype=float)
    rows, cols = at[:, 0].astype(np.int64), at[:, 1].astype(np.int64)
    scores[rows, cols] = at[:, 2]
    costs[rows, cols] = at[:, 3]
    texts, tasks, splits = zip(*prompts.values(), strict=True)
    return OutcomeTable(
        directory.resolve().name,
        tuple(prompts),
        texts,
        tasks,
        splits,
        tokens,
        tuple(models),
        scores,
        costs,
    )


def _read_prompts(path: Path) -> dict[str, tuple[str, str, str | None]]:
    """id -> (text, task, split), in file order."""
    found: dict[str, tuple[str, str, str | None]] = {}
    try:
        with gzip.open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    raw = orjson.loads(line)
                    task = raw.get("category") or str(raw["dataset"])
                    split = raw.get("split")
                    found[str(raw["id"])] = (
                        str(raw["prompt"]),
                        str(task),
                        None if split is None else str(split),
                    )
                except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                    raise OutcomeDataError(f"{path}:{number}: not a prompt line ({exc})") from None
    except (OSError, EOFError) as exc:
        raise OutcomeDataError(f"cannot read {path}: {exc}") from None
    if not found:
        raise OutcomeDataError(f"{path}: no prompts")
    return found


def _number(value: str, where: str, column: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise OutcomeDataError(f"{where}: {column} {value!r} is not a number") from None


def _cell(
    row: list[str],
    where: str,
    row_of: dict[str, int],
    models: dict[str, int],
    tokens: npt.NDArray[np.int64],
) -> tuple[int, int, float, float]:
    if len(row) < len(OUTCOME_COLUMNS):
        raise OutcomeDataError(f"{where}: expected {len(OUTCOME_COLUMNS)} columns")
    prompt_id, model, score, input_tokens, _output, cost = row[:6]
    index = row_of.get(prompt_id)
    if index is None:
        raise OutcomeDataError(f"{where}: prompt {prompt_id!r} is not in {PROMPTS}")
    value = _number(score, where, "score")
    if not 0.0 <= value <= 1.0:
        raise OutcomeDataError(f"{where}: score {score} is outside [0, 1]")
    if input_tokens:
        tokens[index] = int(_number(input_tokens, where, "input_tokens"))
    column = models.setdefault(model, len(models))
    return index, column, value, _number(cost, where, "cost_usd") if cost else np.nan


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
