"""A cascade's outcomes paired per prompt: what calibrating its threshold stands on.

A prompt counts when every tier of the cascade has an outcome for it (the tier's first model,
the one the cascade asks first): the tiers' scores and costs side by side, and the
confidences logged for the early tiers' answers (``Outcome.confidences``, signal -> value).
A prompt is known by its ``prompt_id``, else its ``prompt_hash``; when a model has several
outcomes for one prompt (several runs), the newest counts.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from modelroute.outcomes import Outcome
from modelroute.policy.compiled import Route

Floats = npt.NDArray[np.float64]


def tier_models(route: Route) -> tuple[str, ...]:
    """The model each tier asks first."""
    return tuple(tier[0] for tier in route.tiers)


def prompt_key(outcome: Outcome) -> str | None:
    return outcome.prompt_id or outcome.prompt_hash


@dataclass(frozen=True, slots=True)
class Paired:
    """Arrays over prompts (rows) and tiers (columns), for one confidence signal."""

    keys: tuple[str, ...]
    scores: Floats  # (prompts, tiers)
    costs: Floats  # (prompts, tiers); NaN where an outcome had no cost
    confidences: Floats  # (prompts, tiers - 1): the early tiers' answers

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, keys: Iterable[str]) -> Paired:
        wanted = set(keys)
        rows = [i for i, key in enumerate(self.keys) if key in wanted]
        return Paired(
            tuple(self.keys[i] for i in rows),
            self.scores[rows],
            self.costs[rows],
            self.confidences[rows],
        )


@dataclass(frozen=True, slots=True)
class CascadeOutcomes:
    models: tuple[str, ...]  # one per tier
    by_prompt: dict[str, tuple[Outcome, ...]]  # prompts every tier scored, tier by tier
    unpaired: int  # prompts some tier has no outcome for

    @classmethod
    def collect(cls, outcomes: Iterable[Outcome], models: Sequence[str]) -> CascadeOutcomes:
        newest: dict[str, dict[str, Outcome]] = {}
        for outcome in sorted(outcomes, key=lambda o: o.created_at):
            key = prompt_key(outcome)
            if key is None or outcome.model not in models:
                continue
            newest.setdefault(key, {})[outcome.model] = outcome
        paired = {
            key: tuple(found[m] for m in models)
            for key, found in newest.items()
            if all(m in found for m in models)
        }
        return cls(tuple(models), paired, len(newest) - len(paired))

    def signals(self) -> Counter[str]:
        """Signal -> prompts whose every early-tier answer has that confidence logged."""
        counts: Counter[str] = Counter()
        for row in self.by_prompt.values():
            early = row[:-1]
            logged = set(early[0].confidences)
            for outcome in early[1:]:
                logged &= set(outcome.confidences)
            counts.update(logged)
        return counts

    def paired(self, signal: str) -> Paired:
        """The prompts with ``signal`` logged on every early tier, in a stable order."""
        keys = sorted(
            key
            for key, row in self.by_prompt.items()
            if all(signal in o.confidences for o in row[:-1])
        )
        rows = [self.by_prompt[key] for key in keys]
        tiers = len(self.models)
        return Paired(
            tuple(keys),
            np.array([[o.score for o in row] for row in rows], dtype=float).reshape(-1, tiers),
            np.array(
                [[np.nan if o.cost_usd is None else o.cost_usd for o in row] for row in rows],
                dtype=float,
            ).reshape(-1, tiers),
            np.array(
                [[float(o.confidences[signal]) for o in row[:-1]] for row in rows], dtype=float
            ).reshape(-1, tiers - 1),
        )
