"""Which prompts train, calibrate and test a router: seeded, per prompt, stable.

A prompt's part depends only on its id and the seed (a hash, not a shuffle), so adding or
removing other prompts never moves it, and training and simulation agree on it without
sharing a file. Data with its own ``split`` column keeps it: its ``test`` prompts are the
test part, and a seeded share of its ``train`` prompts becomes the validation part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from modelroute.analysis.simulate.table import Bools, OutcomeTable

PARTS = ("train", "validation", "test")
# Without a split column: 60% train, 20% validation, 20% test.
TRAIN_SHARE = 0.6
VALIDATION_SHARE = 0.2
# With one: this share of its train prompts calibrates.
VALIDATION_OF_TRAIN = 0.2


def unit(prompt_id: str, seed: int) -> float:
    """A number in [0, 1) fixed by the prompt id and the seed."""
    digest = hashlib.sha256(f"{seed}\x1f{prompt_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def part_of(prompt_id: str, given: str | None, seed: int) -> str:
    """``train``, ``validation`` or ``test`` (or the data's own label, if another)."""
    u = unit(prompt_id, seed)
    if given is None:
        if u < TRAIN_SHARE:
            return "train"
        return "validation" if u < TRAIN_SHARE + VALIDATION_SHARE else "test"
    if given == "train":
        return "validation" if u < VALIDATION_OF_TRAIN else "train"
    return given


def parts(table: OutcomeTable, seed: int = 0) -> tuple[str, ...]:
    return tuple(part_of(i, s, seed) for i, s in zip(table.ids, table.splits, strict=True))


def select(table: OutcomeTable, wanted: str | Sequence[str], seed: int = 0) -> OutcomeTable:
    """The prompts in the part(s) ``wanted`` (``all`` keeps every prompt)."""
    names = (wanted,) if isinstance(wanted, str) else tuple(wanted)
    if "all" in names:
        return table
    keep: Bools = np.array([p in names for p in parts(table, seed)], dtype=bool)
    return table.rows(keep)
