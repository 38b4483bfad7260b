"""The neutral per-prompt outcome format (a directory, as ``/work/shared/data`` keeps them):

- ``prompts.jsonl.gz``: ``{"id", "dataset", "category", "prompt", "reference"}`` a line;
- ``outcomes.csv.gz``: ``prompt_id,model,score,input_tokens,output_tokens,cost_usd``, one row
  per prompt and model, sorted by prompt;
- ``models.csv``: the models and their prices.

Its prompts can be sent through the engine, each graded by its dataset's default grader, and
its recorded outcomes imported as they are (source ``import``), as fast as the store takes
them.
"""

from __future__ import annotations

import csv
import gzip
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from modelroute.evaluation.dataset import CheckGrader, Dataset, DatasetError, EvalItem, user_message
from modelroute.grading import GraderSpecError
from modelroute.outcomes import Outcome, OutcomeSource, prompt_hash

PROMPTS = "prompts.jsonl.gz"
OUTCOMES = "outcomes.csv.gz"
MODELS = "models.csv"
OUTCOME_COLUMNS = ("prompt_id", "model", "score", "input_tokens", "output_tokens", "cost_usd")
NO_GRADER = "MBPP code: no automatic grader fits (its unit tests are not in the data)"
NO_REFERENCE = "no reference answer in the data"


def _choice(letters: str) -> Any:
    return {"choice": {"letters": letters}}


# dataset -> category -> grader spec (None: no automatic grader; "*": every category)
DEFAULT_GRADERS: dict[str, dict[str, Any]] = {
    "mmlu_pro": {"*": "choice"},
    "gsm8k": {"*": "numeric"},
    "routerbench_subset": {
        "arc-challenge": _choice("ABCDE"),
        "winogrande": _choice("AB"),
        "mbpp": None,
    },
}


def is_neutral(path: Path) -> bool:
    return path.is_dir() and (path / PROMPTS).is_file()


@dataclass(frozen=True, slots=True)
class Prompt:
    id: str
    dataset: str
    category: str | None
    text: str
    reference: Any

    @property
    def task(self) -> str:
        """What outcomes are grouped by: the benchmark's own category, else the dataset."""
        return self.category or self.dataset


def read_prompts(directory: Path) -> Iterator[Prompt]:
    path = directory / PROMPTS
    try:
        with gzip.open(path, "rb") as handle:
            for number, line in enumerate(handle, start=1):
                try:
                    raw = orjson.loads(line)
                    yield Prompt(
                        str(raw["id"]),
                        str(raw["dataset"]),
                        raw.get("category"),
                        str(raw["prompt"]),
                        raw.get("reference"),
                    )
                except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                    raise DatasetError(f"{path}:{number}: not a prompt line ({exc})") from None
    except (OSError, EOFError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None


def default_grader(prompt: Prompt) -> Any:
    """The dataset's grader for this prompt; ``None`` when no automatic grader fits;
    ``DatasetError`` for a dataset this release has no default for."""
    by_category = DEFAULT_GRADERS.get(prompt.dataset)
    if by_category is None:
        known = ", ".join(DEFAULT_GRADERS)
        raise DatasetError(
            f"no default grader for dataset {prompt.dataset!r} (known: {known}); pass --grader"
        )
    if "*" in by_category:
        return by_category["*"]
    if prompt.category not in by_category:
        raise DatasetError(
            f"no default grader for {prompt.dataset} category {prompt.category!r}; pass --grader"
        )
    return by_category[prompt.category]


def load_neutral(
    directory: Path, check: CheckGrader, grader: Any = None, limit: int | None = None
) -> Dataset:
    """The first ``limit`` gradable prompts, each with its dataset's grader (or ``grader``);
    prompts no grader fits or without a reference are counted as skipped."""
    dataset = Dataset(directory.name, [])
    for prompt in read_prompts(directory):
        if limit is not None and len(dataset.items) >= limit:
            break
        spec = grader if grader is not None else default_grader(prompt)
        if spec is None:
            dataset.skip(NO_GRADER)
            continue
        try:
            built = check(spec)
        except GraderSpecError as exc:
            raise DatasetError(f"{directory}: {exc}") from None
        if prompt.reference is None and built.needs_reference:
            dataset.skip(NO_REFERENCE)
            continue
        messages = user_message(prompt.text)
        dataset.items.append(
            EvalItem(
                messages, prompt.reference, spec, prompt_hash(messages), prompt.id, prompt.task
            )
        )
    if not dataset.items:
        raise DatasetError(f"{directory}: no prompts to evaluate")
    return dataset


def _float(value: str, where: str, column: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise DatasetError(f"{where}: {column} {value!r} is not a number") from None


class OutcomeImport:
    """Recorded outcomes of a neutral dataset as ``import`` outcomes, in batches."""

    def __init__(
        self,
        directory: Path,
        run: str,
        route: str | None = None,
        limit: int | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.directory = directory
        self.run = run
        self.route = route
        self.limit = limit  # the first N prompts of the outcomes file, all their rows
        self.now = clock()
        self.prompts = {p.id: p for p in read_prompts(directory)}
        self.rows = 0
        self._hashes: dict[str, str] = {}

    def batches(self, size: int = 5000) -> Iterator[list[Outcome]]:
        path = self.directory / OUTCOMES
        try:
            with gzip.open(path, "rt", encoding="utf-8", newline="") as handle:
                yield from self._batches(path, handle, size)
        except (OSError, EOFError) as exc:
            raise DatasetError(f"cannot read {path}: {exc}") from None

    def _batches(self, path: Path, handle: io.TextIOBase, size: int) -> Iterator[list[Outcome]]:
        reader = csv.reader(handle)
        header = tuple(next(reader, ()))
        if header[: len(OUTCOME_COLUMNS)] != OUTCOME_COLUMNS:
            raise DatasetError(f"{path}: expected columns {','.join(OUTCOME_COLUMNS)}")
        batch: list[Outcome] = []
        seen: set[str] = set()
        last = None
        for number, row in enumerate(reader, start=2):
            prompt_id = row[0]
            if prompt_id != last:
                if self.limit is not None and len(seen) >= self.limit:
                    break
                seen.add(prompt_id)
                last = prompt_id
            batch.append(self._outcome(row, f"{path}:{number}"))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _outcome(self, row: list[str], where: str) -> Outcome:
        if len(row) < len(OUTCOME_COLUMNS):
            raise DatasetError(f"{where}: expected {len(OUTCOME_COLUMNS)} columns")
        prompt_id, model, score, input_tokens, output_tokens, cost = row[:6]
        prompt = self.prompts.get(prompt_id)
        if prompt is None:
            raise DatasetError(f"{where}: prompt {prompt_id!r} is not in {PROMPTS}")
        value = _float(score, where, "score")
        if not 0.0 <= value <= 1.0:
            raise DatasetError(f"{where}: score {score} is outside [0, 1]")
        self.rows += 1
        return Outcome(
            source=OutcomeSource.IMPORT,
            grader=f"recorded:{prompt.dataset}",
            score=value,
            model=model,
            created_at=self.now,
            prompt_id=prompt_id,
            prompt_hash=self._hash(prompt),
            task=prompt.task,
            route=self.route,
            cost_usd=_float(cost, where, "cost_usd") if cost else None,
            run=self.run,
            detail={
                "input_tokens": int(_float(input_tokens or "0", where, "input_tokens")),
                "output_tokens": int(_float(output_tokens or "0", where, "output_tokens")),
            },
        )

    def _hash(self, prompt: Prompt) -> str:
        found = self._hashes.get(prompt.id)
        if found is None:
            found = self._hashes[prompt.id] = prompt_hash(user_message(prompt.text))
        return found
