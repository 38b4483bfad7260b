"""The neutral per-prompt outcome format, read in one place (training, simulation and the
evaluation's import all read it here).

A directory holds (as ``/work/shared/data/README.md`` describes):

- ``prompts.jsonl.gz``: one JSON object a line, ``{"id", "dataset", "category", "prompt",
  "reference"}`` and optionally ``"split"``;
- ``outcomes.csv.gz``: ``prompt_id,model,score,input_tokens,output_tokens,cost_usd``, one row
  per prompt and model; a score in [0, 1], an empty cost is unknown;
- ``models.csv``: the models (column ``model``) and their prices.

Every error is an ``OutcomeDataError`` whose message names the file and, for a bad line, its
number. ``read_outcomes`` gives the whole directory as arrays (prompts x models, NaN where no
outcome); ``prompt_lines`` and ``outcome_rows`` stream the two files for readers that keep
something else per line.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import orjson

PROMPTS = "prompts.jsonl.gz"
OUTCOMES = "outcomes.csv.gz"
MODELS = "models.csv"
OUTCOME_COLUMNS = ("prompt_id", "model", "score", "input_tokens", "output_tokens", "cost_usd")

Floats = npt.NDArray[np.float64]


class OutcomeDataError(ValueError):
    """Outcome data that is not in the neutral format; the message names the file and line."""


def is_neutral(path: Path) -> bool:
    return path.is_dir() and (path / PROMPTS).is_file()


def _file(directory: Path, name: str) -> Path:
    path = directory / name
    if not path.is_file():
        raise OutcomeDataError(f"{directory}: no {name} (expected the neutral outcome format)")
    return path


@dataclass(frozen=True, slots=True)
class PromptLine:
    id: str
    dataset: str
    category: str | None
    text: str
    reference: Any
    split: str | None  # the data's own split column, when it has one

    @property
    def task(self) -> str:
        """What outcomes are grouped by: the benchmark's own category, else the dataset."""
        return self.category or self.dataset


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


def prompt_lines(directory: Path) -> Iterator[PromptLine]:
    """The prompts of ``directory``, in file order."""
    path = _file(directory, PROMPTS)
    try:
        with gzip.open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    raw = orjson.loads(line)
                    yield PromptLine(
                        str(raw["id"]),
                        str(raw["dataset"]),
                        _optional(raw.get("category")),
                        str(raw["prompt"]),
                        raw.get("reference"),
                        _optional(raw.get("split")),
                    )
                except (orjson.JSONDecodeError, KeyError, TypeError, AttributeError) as exc:
                    raise OutcomeDataError(f"{path}:{number}: not a prompt line ({exc})") from None
    except (OSError, EOFError) as exc:
        raise OutcomeDataError(f"cannot read {path}: {exc}") from None


class OutcomeRow(NamedTuple):
    prompt_id: str
    model: str
    score: float  # in [0, 1]
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    where: str  # file:line


def _number(value: str, where: str, column: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise OutcomeDataError(f"{where}: {column} {value!r} is not a number") from None


def parse_row(row: list[str], where: str) -> OutcomeRow:
    """One line of ``outcomes.csv.gz`` (``where``: its file and line)."""
    if len(row) < len(OUTCOME_COLUMNS):
        raise OutcomeDataError(f"{where}: expected {len(OUTCOME_COLUMNS)} columns")
    prompt_id, model, score, input_tokens, output_tokens, cost = row[:6]
    value = _number(score, where, "score")
    if not 0.0 <= value <= 1.0:
        raise OutcomeDataError(f"{where}: score {score} is outside [0, 1]")
    return OutcomeRow(
        prompt_id,
        model,
        value,
        int(_number(input_tokens, where, "input_tokens")) if input_tokens else None,
        int(_number(output_tokens, where, "output_tokens")) if output_tokens else None,
        _number(cost, where, "cost_usd") if cost else None,
        where,
    )


def outcome_rows(directory: Path) -> Iterator[OutcomeRow]:
    """The outcome rows of ``directory``, in file order, the header checked."""
    path = _file(directory, OUTCOMES)
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
            reader = csv.reader(handle)
            header = tuple(next(reader, ()))
            if header[: len(OUTCOME_COLUMNS)] != OUTCOME_COLUMNS:
                raise OutcomeDataError(f"{path}:1: expected columns {','.join(OUTCOME_COLUMNS)}")
            for number, row in enumerate(reader, start=2):
                yield parse_row(row, f"{path}:{number}")
    except (OSError, EOFError, csv.Error) as exc:
        raise OutcomeDataError(f"cannot read {path}: {exc}") from None


def model_names(directory: Path) -> list[str]:
    """The models ``models.csv`` lists, in its order."""
    path = _file(directory, MODELS)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            return [row["model"] for row in csv.DictReader(handle)]
    except KeyError:
        raise OutcomeDataError(f"{path}:1: no column 'model'") from None
    except (OSError, csv.Error, UnicodeDecodeError) as exc:
        raise OutcomeDataError(f"cannot read {path}: {exc}") from None


def data_hash(directory: Path) -> str:
    """sha256 over the bytes of the directory's three files."""
    digest = hashlib.sha256()
    for name in (PROMPTS, OUTCOMES, MODELS):
        digest.update(_file(directory, name).read_bytes())
    return digest.hexdigest()


@dataclass(frozen=True, slots=True)
class Outcomes:
    """A directory as arrays: prompts in file order, models in order of first outcome."""

    prompts: tuple[PromptLine, ...]
    models: tuple[str, ...]
    scores: Floats  # (prompts, models), NaN where no outcome
    costs: Floats  # (prompts, models), NaN where no outcome or no cost
    input_tokens: npt.NDArray[np.int64]  # per prompt, the last recorded count (0: none)


def read_outcomes(directory: Path) -> Outcomes:
    """Every prompt and outcome of ``directory``; an outcome of a prompt the prompts file
    does not have is an error."""
    prompts = tuple(prompt_lines(directory))
    if not prompts:
        raise OutcomeDataError(f"{directory / PROMPTS}: no prompts")
    row_of: dict[str, int] = {}
    for i, prompt in enumerate(prompts):
        first = row_of.setdefault(prompt.id, i)
        if first != i:
            raise OutcomeDataError(
                f"{directory / PROMPTS}:{i + 1}: repeats the id {prompt.id!r} of line {first + 1}"
            )
    models: dict[str, int] = {}
    cells: list[tuple[int, int, float, float]] = []
    tokens = np.zeros(len(prompts), dtype=np.int64)
    for row in outcome_rows(directory):
        index = row_of.get(row.prompt_id)
        if index is None:
            raise OutcomeDataError(f"{row.where}: prompt {row.prompt_id!r} is not in {PROMPTS}")
        if row.input_tokens is not None:
            tokens[index] = row.input_tokens
        column = models.setdefault(row.model, len(models))
        cells.append((index, column, row.score, np.nan if row.cost_usd is None else row.cost_usd))
    if not cells:
        raise OutcomeDataError(f"{directory / OUTCOMES}: no outcome rows")
    scores = np.full((len(prompts), len(models)), np.nan)
    costs = np.full((len(prompts), len(models)), np.nan)
    at = np.array(cells, dtype=float)
    rows, cols = at[:, 0].astype(np.int64), at[:, 1].astype(np.int64)
    scores[rows, cols] = at[:, 2]
    costs[rows, cols] = at[:, 3]
    return Outcomes(prompts, tuple(models), scores, costs, tokens)
