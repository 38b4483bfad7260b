"""Which prompts train, calibrate and test a router: ``modelroute.learned.data.split_of``,
the one definition that training uses too, so a simulation's test prompts are never ones the
router was fitted or calibrated on.

A prompt's part depends only on its id and the seed (a hash, not a shuffle). Data with its own
``split`` column keeps it: its ``train`` prompts are divided into train and validation, every
other label is test.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from modelroute.analysis.simulate.table import Bools, OutcomeTable
from modelroute.learned.data import SPLITS, split_of

PARTS = SPLITS


def parts(table: OutcomeTable, seed: int = 0) -> tuple[str, ...]:
    return tuple(split_of(i, seed, s) for i, s in zip(table.ids, table.splits, strict=True))


def select(table: OutcomeTable, wanted: str | Sequence[str], seed: int = 0) -> OutcomeTable:
    """The prompts in the part(s) ``wanted`` (``all`` keeps every prompt)."""
    names = (wanted,) if isinstance(wanted, str) else tuple(wanted)
    if "all" in names:
        return table
    keep: Bools = np.array([p in names for p in parts(table, seed)], dtype=bool)
    return table.rows(keep)
