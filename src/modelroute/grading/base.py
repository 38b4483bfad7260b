"""What every grader gives back, and the two shapes a grader comes in.

A grade is a score in [0, 1] with its evidence (what was extracted, what it was compared
with), so a surprising score can be checked by reading one outcome. A grader that cannot
reach a verdict (a judge whose reply breaks the format, a judge call that failed) raises
``GradingError``: a grading failure is recorded as one, never scored as a silent 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

Messages = Sequence[Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Grade:
    score: float  # in [0, 1]
    detail: Mapping[str, Any] = field(default_factory=dict)  # the evidence
    cost_usd: float = 0.0  # what grading itself cost (a judge's call), 0 for local graders

    def __post_init__(self) -> None:
        if not 0.0 <= self.score <= 1.0:
            raise ValueError(f"a grade's score must be in [0, 1], got {self.score}")


class GradingError(Exception):
    """No verdict could be reached for this answer; ``detail`` says what was seen."""

    def __init__(self, message: str, detail: Mapping[str, Any] | None = None) -> None:
        super().__init__(message)
        self.detail = dict(detail or {})


class Grader(Protocol):
    """Grades one answer. ``name`` is what outcomes keep in their ``grader`` field."""

    @property
    def name(self) -> str: ...

    @property
    def needs_reference(self) -> bool:
        """False for graders that carry their own yardstick (a rubric, a pattern)."""
        ...

    async def grade(self, answer: str, reference: Any, messages: Messages = ()) -> Grade:
        """Score ``answer`` against ``reference`` (``messages``: the prompt, for judges)."""
        ...


class LocalGrader:
    """A grader that needs nothing but the two texts: ``check`` is synchronous and pure."""

    name = "local"
    needs_reference = True

    def check(self, answer: str, reference: Any) -> Grade:
        raise NotImplementedError

    async def grade(self, answer: str, reference: Any, messages: Messages = ()) -> Grade:
        return self.check(answer, reference)


def references(reference: Any) -> list[Any]:
    """A reference may list several acceptable answers; a single one is a list of one."""
    if isinstance(reference, list | tuple):
        return list(reference)
    return [reference]
