"""Outcome data for training: the neutral per-prompt format (``prompts.jsonl.gz``,
``outcomes.csv.gz``, ``models.csv``, read by ``outcomes.neutral``) as arrays, and the seeded
split by prompt.

``split_of(prompt_id, seed, given)`` is the one definition of the split: a dataset's own
``split`` column when present (its ``train`` part divided 75/25 into train and validation),
else 60/20/20 train/validation/test by a hash of the seed and the prompt id. Training fits on
``train``, calibrates on ``validation`` and never reads ``test``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from modelroute.outcomes.neutral import OutcomeDataError, data_hash, model_names, read_outcomes

__all__ = ["SPLITS", "OutcomeDataError", "OutcomeSet", "load_outcomes", "split_of"]

SPLITS = ("train", "validation", "test")


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


def load_outcomes(directory: str | Path, models: list[str] | None = None) -> OutcomeSet:
    """Read a directory in the neutral format (``outcomes.neutral``); ``models`` picks and
    orders the models (all, in ``models.csv`` order, when None)."""
    root = Path(directory)
    digest = data_hash(root)  # names the first of the three files missing
    known = model_names(root)
    chosen = list(known) if not models else list(models)
    unknown = [m for m in chosen if m not in known]
    if unknown:
        raise OutcomeDataError(
            f"unknown model(s) {', '.join(unknown)}; {root} has: {', '.join(known)}"
        )
    if len(chosen) < 2:
        raise OutcomeDataError("a router needs at least two models")
    found = read_outcomes(root)
    shape = (len(found.prompts), len(chosen))
    score, cost = np.full(shape, np.nan), np.full(shape, np.nan)
    for j, model in enumerate(chosen):
        if model in found.models:
            score[:, j] = found.scores[:, found.models.index(model)]
            cost[:, j] = found.costs[:, found.models.index(model)]
    prompts = found.prompts
    return OutcomeSet(
        [p.id for p in prompts],
        [p.text for p in prompts],
        [p.category for p in prompts],
        [p.split for p in prompts],
        tuple(chosen),
        score,
        cost,
        digest,
    )
