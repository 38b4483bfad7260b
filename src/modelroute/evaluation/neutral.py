"""Evaluating a dataset in the neutral per-prompt outcome format (``outcomes/neutral.py``
reads it: ``prompts.jsonl.gz``, ``outcomes.csv.gz`` sorted by prompt, ``models.csv``).

Its prompts can be sent through the engine, each graded by its dataset's default grader, and
its recorded outcomes imported as they are (source ``import``), as fast as the store takes
them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from modelroute.evaluation.dataset import CheckGrader, Dataset, DatasetError, EvalItem, user_message
from modelroute.grading import GraderSpecError
from modelroute.outcomes import Outcome, OutcomeSource, prompt_hash
from modelroute.outcomes.neutral import (
    MODELS,
    OUTCOME_COLUMNS,
    OUTCOMES,
    PROMPTS,
    OutcomeDataError,
    OutcomeRow,
    PromptLine,
    is_neutral,
    outcome_rows,
    prompt_lines,
)

__all__ = [
    "DEFAULT_GRADERS",
    "MODELS",
    "NO_GRADER",
    "NO_REFERENCE",
    "OUTCOMES",
    "OUTCOME_COLUMNS",
    "PROMPTS",
    "OutcomeImport",
    "Prompt",
    "default_grader",
    "is_neutral",
    "load_neutral",
    "read_prompts",
]

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


# The format's own prompt line (id, dataset, category, text, reference, split).
Prompt = PromptLine


def read_prompts(directory: Path) -> Iterator[Prompt]:
    """The prompts of ``directory`` (``outcomes.neutral.prompt_lines``), a bad one a
    ``DatasetError`` naming its file and line."""
    try:
        yield from prompt_lines(directory)
    except OutcomeDataError as exc:
        raise DatasetError(str(exc)) from None


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
        """The outcomes in batches of ``size``; a bad row a ``DatasetError`` naming its file
        and line."""
        try:
            yield from self._batches(size)
        except OutcomeDataError as exc:
            raise DatasetError(str(exc)) from None

    def _batches(self, size: int) -> Iterator[list[Outcome]]:
        batch: list[Outcome] = []
        seen: set[str] = set()
        last = None
        for row in outcome_rows(self.directory):
            if row.prompt_id != last:
                if self.limit is not None and len(seen) >= self.limit:
                    break
                seen.add(row.prompt_id)
                last = row.prompt_id
            batch.append(self._outcome(row))
            if len(batch) >= size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _outcome(self, row: OutcomeRow) -> Outcome:
        prompt = self.prompts.get(row.prompt_id)
        if prompt is None:
            raise DatasetError(f"{row.where}: prompt {row.prompt_id!r} is not in {PROMPTS}")
        self.rows += 1
        return Outcome(
            source=OutcomeSource.IMPORT,
            grader=f"recorded:{prompt.dataset}",
            score=row.score,
            model=row.model,
            created_at=self.now,
            prompt_id=row.prompt_id,
            prompt_hash=self._hash(prompt),
            task=prompt.task,
            route=self.route,
            cost_usd=row.cost_usd,
            run=self.run,
            detail={
                "input_tokens": row.input_tokens or 0,
                "output_tokens": row.output_tokens or 0,
            },
        )

    def _hash(self, prompt: Prompt) -> str:
        found = self._hashes.get(prompt.id)
        if found is None:
            found = self._hashes[prompt.id] = prompt_hash(user_message(prompt.text))
        return found
