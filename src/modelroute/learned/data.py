"""Outcome data for training: the neutral per-prompt format (``prompts.jsonl.gz``,
``outcomes.csv.gz``, ``models.csv``) read into arrays, and the seeded split by prompt.

``split_of(prompt_id, seed, given)`` is the one definition of the split: a dataset's own
``split`` column when present (its ``train`` part divided 75/25 into train and validation),
else 60/20/20 train/validation/test by a hash of the seed and the prompt id. Training fits on
``train``, calibrates on ``validation`` and never reads ``test``.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import orjson

SPLITS = ("train", "validation", "test")


class OutcomeDataError(ValueError):
    """An outcome directory that is not in the neutral format."""


def _unit(prompt_id: str, seed: int) -> float:
    digest = hashlib.sha256(f"{seed}:{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(prompt_id: str, seed: int = 0, given: str | None = None) -> str:
    """``train``, ``validation`` or ``test`` for one prompt (see the module's docstring)."""
    u = _unit(prompt_id, seed)
    if given is not None:
        if given != "train":
            return "test"
        return "train" if u < 0.75 else "validation"
    return "train" if u < 0.6 else "validation" if u < 0.8 else "test"


@dataclass(frozen=True)
class OutcomeSet:
    """Prompts in the order of ``prompts.jsonl.gz``; per (prompt, model) arrays, NaN where a
    model has no outcome for a prompt."""

    ids: list[str]
    texts: list[str]
    categories: list[str | None]
    splits: list[str | None]  # the dataset's own split column, if any
    models: tuple[str, ...]
    score: npt.NDArray[np.float64]  # prompts x models
    cost: npt.NDArray[np.float64]  # prompts x models, USD
    data_hash: str  # sha256 over the directory's three files

    def split(self, seed: int = 0) -> npt.NDArray[np.str_]:
        return np.array([split_of(i, seed, g) for i, g in zip(self.ids, self.splits, strict=True)])

    def subset(self, mask: npt.NDArray[np.bool_]) -> OutcomeSet:
        pick = np.flatnonzero(mask)
        return OutcomeSet(
            [self.ids[i] for i in pick],
            [self.texts[i] for i in pick],
            [self.categories[i] for i in pick],
            [self.splits[i] for i in pick],
            self.models,
            self.score[pick],
            self.cost[pick],
            self.data_hash,
        )


def _file(directory: Path, name: str) -> Path:
    path = directory / name
    if not path.is_file():
        raise OutcomeDataError(f"{directory}: no {name} (expected the neutral outcome format)")
    return path


def load_outcomes(directory: str | Path, models: list[str] | None = None) -> OutcomeSet:
    """Read a directory in the neutral format; ``models`` picks and orders the models (all, in
    ``models.csv`` order, when None)."""
    root = Path(directory)
    prompts_path = _file(root, "prompts.jsonl.gz")
    outcomes_path = _file(root, "outcomes.csv.gz")
    models_path = _file(root, "models.csv")
    digest = hashlib.sha256()
    for path in (prompts_path, outcomes_path, models_path):
        digest.update(path.read_bytes())
    with models_path.open(newline="", encoding="utf-8") as handle:
        known = [row["model"] for row in csv.DictReader(handle)]
    chosen = list(known) if not models else list(models)
    unknown = [m for m in chosen if m not in known]
    if unknown:
        raise OutcomeDataError(
            f"unknown model(s) {', '.join(unknown)}; {root} has: {', '.join(known)}"
        )
    if len(chosen) < 2:
        raise OutcomeDataError("a router needs at least two models")
    ids, texts, cats, splits = _prompts(prompts_path)
    row = {pid: i for i, pid in enumerate(ids)}
    col = {m: j for j, m in enumerate(chosen)}
    score = np.full((len(ids), len(chosen)), np.nan)
    cost = np.full((len(ids), len(chosen)), np.nan)
    with gzip.open(outcomes_path, "rt", newline="", encoding="utf-8") as handle:
        for rec in csv.DictReader(handle):
            j = col.get(rec["model"])
            i = row.get(rec["prompt_id"])
            if j is None or i is None:
                continue
            try:
                score[i, j] = float(rec["score"])
                cost[i, j] = float(rec["cost_usd"])
            except (TypeError, ValueError):
                raise OutcomeDataError(f"{outcomes_path}: bad row {rec}") from None
    return OutcomeSet(ids, texts, cats, splits, tuple(chosen), score, cost, digest.hexdigest())


def _prompts(path: Path) -> tuple[list[str], list[str], list[str | None], list[str | None]]:
    ids: list[str] = []
    texts: list[str] = []
    cats: list[str | None] = []
    splits: list[str | None] = []
    with gzip.open(path, "rb") as handle:
        for number, line in enumerate(handle, 1):
            try:
                item = orjson.loads(line)
                ids.append(str(item["id"]))
                texts.append(str(item["prompt"]))
            except (orjson.JSONDecodeError, KeyError, TypeError):
                raise OutcomeDataError(f"{path}:{number}: not a prompt object") from None
            category = item.get("category")
            cats.append(None if category is None else str(category))
            split = item.get("split")
            splits.append(None if split is None else str(split))
    return ids, texts, cats, splits
